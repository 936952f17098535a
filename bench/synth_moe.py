#!/usr/bin/env python3
"""Write a synthetic mixture-of-experts checkpoint with the shapes of a real one, for speed,
memory and quantization-error measurements (../shared/tools/synth_hf.py has no MoE preset;
this reuses its weight shapes and shard writer). Random weights, so the text it generates
means nothing; the router is random too, so tokens spread over the experts evenly.

  synth_moe.py --preset mixtral-8x1.1b --tokenizer-dir ../shared/tokenizers/llama2 OUT_DIR
  synth_moe.py --preset qwen3-30b-a3b --layers 4 --tokenizer-dir ../shared/tokenizers/qwen3 OUT_DIR

mixtral-8x1.1b: a MixtralForCausalLM of eight TinyLlama-1.1B FFNs per layer, two used
per token, 8 layers (2.4B weights, 0.7B used per token), which llama.cpp's converter in
../shared/tools/llamacpp reads, for side-by-side runs. qwen3-30b-a3b: Qwen3-30B-A3B's exact
shapes (128 experts of 768, 8 used, 48 layers); --layers cuts the layer count.
"""
import argparse
import sys

import numpy as np

from synth_shards import finish, matrix, write_checkpoint

PRESETS = {
    # arch, hidden, layers, heads, kv heads, head dim, expert ffn, experts, used, vocab, rope theta
    "mixtral-8x1.1b": ("mixtral", 2048, 8, 32, 4, 64, 5632, 8, 2, 32000, 10000.0),
    "qwen3-30b-a3b": ("qwen3_moe", 2048, 48, 32, 4, 128, 768, 128, 8, 151936, 1000000.0),
}


def tensors(p, layers, rng):
    arch, h, _, nh, nkv, hd, ffn, experts, _, vocab, _ = p
    L = layers
    norm = lambda n: (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)
    yield "model.embed_tokens.weight", matrix(rng, vocab, h, 0.02)
    for i in range(L):
        pre = f"model.layers.{i}."
        yield pre + "input_layernorm.weight", norm(h)
        for name, rows in (("q_proj", nh * hd), ("k_proj", nkv * hd), ("v_proj", nkv * hd)):
            yield pre + f"self_attn.{name}.weight", matrix(rng, rows, h, 0.02)
        if arch == "qwen3_moe":
            yield pre + "self_attn.q_norm.weight", norm(hd)
            yield pre + "self_attn.k_norm.weight", norm(hd)
        yield pre + "self_attn.o_proj.weight", matrix(rng, h, nh * hd, 0.02 / np.sqrt(2 * L))
        yield pre + "post_attention_layernorm.weight", norm(h)
        moe, (gate, up, down) = (("block_sparse_moe.", ("w1", "w3", "w2")) if arch == "mixtral"
                                 else ("mlp.", ("gate_proj", "up_proj", "down_proj")))
        yield pre + moe + "gate.weight", matrix(rng, experts, h, 0.05)
        for e in range(experts):
            ex = pre + moe + f"experts.{e}."
            yield ex + gate + ".weight", matrix(rng, ffn, h, 0.02)
            yield ex + up + ".weight", matrix(rng, ffn, h, 0.02)
            yield ex + down + ".weight", matrix(rng, h, ffn, 0.02 / np.sqrt(2 * L))
    yield "model.norm.weight", norm(h)
    yield "lm_head.weight", matrix(rng, vocab, h, 0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--layers", type=int, help="layer count (default: the preset's)")
    ap.add_argument("--tokenizer-dir", required=True, help="folder with tokenizer.model and/or tokenizer.json")
    ap.add_argument("--shard-mb", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    p = PRESETS[a.preset]
    arch, h, L, nh, nkv, hd, ffn, experts, used, vocab, theta = p
    L = a.layers or L
    rng = np.random.default_rng(a.seed)
    total, n = write_checkpoint(a.out, tensors(p, L, rng), a.shard_mb)
    cfg = {"hidden_size": h, "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv,
           "vocab_size": vocab, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": theta,
           "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 1,
           "eos_token_id": 2, "num_experts_per_tok": used}
    if arch == "mixtral":
        cfg.update({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "intermediate_size": ffn,
                    "num_local_experts": experts, "sliding_window": None, "router_jitter_noise": 0.0})
    else:
        cfg.update({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "head_dim": hd,
                    "intermediate_size": 6144, "moe_intermediate_size": ffn, "num_experts": experts,
                    "norm_topk_prob": True, "decoder_sparse_step": 1, "mlp_only_layers": [],
                    "attention_bias": False, "bos_token_id": 151643, "eos_token_id": 151645})
    finish(a.out, cfg, a.tokenizer_dir)
    print(f"{a.preset} ({L} layers): {total / 1e9:.2f} GB of weights in {n} shard(s) at {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
