#!/usr/bin/env python3
"""Write a synthetic mixture-of-experts checkpoint with the shapes of a real one, for speed,
memory and quantization-error measurements (../shared/tools/synth_hf.py has no MoE preset;
this reuses its weight shapes and shard writer). Random weights, so the text it generates
means nothing; the router is random too, so tokens spread over the experts evenly.

  synth_moe.py --preset mixtral-8x1.1b --tokenizer-dir ../shared/tokenizers/llama2 OUT_DIR
  synth_moe.py --preset qwen3-30b-a3b --layers 4 --tokenizer-dir ../shared/tokenizers/qwen3 OUT_DIR
  synth_moe.py --preset granite-3.1-1b-a400m --tokenizer-dir ../shared/tokenizers/llama2 OUT_DIR
  synth_moe.py --preset qwen1.5-moe-a2.7b --layers 2 --tokenizer-dir ../shared/tokenizers/llama2 OUT_DIR
  synth_moe.py --preset gpt-oss-20b --layers 4 --tokenizer-dir ../shared/tokenizers/llama2 OUT_DIR

mixtral-8x1.1b: a MixtralForCausalLM of eight TinyLlama-1.1B FFNs per layer, two used
per token, 8 layers (2.4B weights, 0.7B used per token), which llama.cpp's converter in
../shared/tools/llamacpp reads, for side-by-side runs. qwen3-30b-a3b: Qwen3-30B-A3B's exact
shapes (128 experts of 768, 8 used, 48 layers); --layers cuts the layer count.
granite-3.1-1b-a400m / -3b-a800m: GraniteMoeForCausalLM with those models' shapes and
multipliers (32 or 40 experts of 512, 8 used; each layer's experts stacked in two 3-D
tensors) and tied embeddings; the vocabulary is the tokenizer's (granite's own is 49,155).
qwen1.5-moe-a2.7b: Qwen2MoeForCausalLM with that model's shapes (60 experts of 1408, 4 used,
a shared expert of 5632, q/k/v biases), the tokenizer's vocabulary (its own is 151,936).
gpt-oss-20b: GptOssForCausalLM with that model's shapes (32 experts of 2880, 4 used, 64 heads
of 64, biases, sinks, a window of 128 on every other layer, YaRN x32), its experts packed
as OpenAI ships them (MXFP4 _blocks and _scales), the tokenizer's vocabulary (its own is 201,088).
"""
import argparse
import json
import os
import sys

import numpy as np

from synth_shards import finish, matrix, write_checkpoint

PRESETS = {
    # arch, hidden, layers, heads, kv heads, head dim, expert ffn, experts, used, vocab, rope theta
    "mixtral-8x1.1b": ("mixtral", 2048, 8, 32, 4, 64, 5632, 8, 2, 32000, 10000.0),
    "qwen3-30b-a3b": ("qwen3_moe", 2048, 48, 32, 4, 128, 768, 128, 8, 151936, 1000000.0),
    "granite-3.1-1b-a400m": ("granitemoe", 1024, 24, 16, 8, 64, 512, 32, 8, 0, 10000000.0),
    "granite-3.1-3b-a800m": ("granitemoe", 1536, 32, 24, 8, 64, 512, 40, 8, 0, 10000000.0),
    "qwen1.5-moe-a2.7b": ("qwen2_moe", 2048, 24, 16, 16, 128, 1408, 60, 4, 0, 1000000.0),
    "gpt-oss-20b": ("gpt_oss", 2880, 24, 64, 8, 64, 2880, 32, 4, 0, 150000.0),
}
# E2M1's magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6: the midpoints between them.
E2M1_MIDPOINTS = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


def mxfp4_pack(w):
    """Rows of w as OpenAI's MXFP4: _blocks [rows, cols/32, 16] (two E2M1 codes a byte, the
    first in the low nibble) and _scales [rows, cols/32] (exponent + 127), each block's
    exponent the smallest that puts its largest |value| at 6 or below."""
    b = w.reshape(w.shape[0], -1, 32)
    exponent = np.ceil(np.log2(np.maximum(np.abs(b).max(axis=-1), 1e-30) / 6.0))
    scaled = b / np.exp2(exponent)[..., None]
    codes = np.searchsorted(E2M1_MIDPOINTS, np.abs(scaled)).astype(np.uint8) | (np.signbit(scaled).astype(np.uint8) << 3)
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8), (exponent + 127).astype(np.uint8)


def packed_experts(rng, experts, rows, cols, std):
    """Every expert's [rows, cols] matrix packed, stacked: (_blocks, _scales)."""
    packed = [mxfp4_pack(matrix(rng, rows, cols, std)) for _ in range(experts)]
    return np.stack([p[0] for p in packed]), np.stack([p[1] for p in packed])
QWEN2_MOE_SHARED = 5632  # Qwen1.5-MoE-A2.7B's shared_expert_intermediate_size


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
            if arch in ("qwen2_moe", "gpt_oss"):
                yield pre + f"self_attn.{name}.bias", (0.02 * rng.standard_normal(rows)).astype(np.float32)
        if arch == "qwen3_moe":
            yield pre + "self_attn.q_norm.weight", norm(hd)
            yield pre + "self_attn.k_norm.weight", norm(hd)
        yield pre + "self_attn.o_proj.weight", matrix(rng, h, nh * hd, 0.02 / np.sqrt(2 * L))
        yield pre + "post_attention_layernorm.weight", norm(h)
        if arch == "gpt_oss":
            yield pre + "self_attn.o_proj.bias", (0.02 * rng.standard_normal(h)).astype(np.float32)
            yield pre + "self_attn.sinks", (1.0 + rng.standard_normal(nh)).astype(np.float32)
            yield pre + "mlp.router.weight", matrix(rng, experts, h, 0.05)
            yield pre + "mlp.router.bias", (0.05 * rng.standard_normal(experts)).astype(np.float32)
            ex = pre + "mlp.experts."
            for name, rows, cols, std in (("gate_up_proj", 2 * ffn, h, 0.02), ("down_proj", h, ffn, 0.02 / np.sqrt(2 * L))):
                yield from zip((ex + name + "_blocks", ex + name + "_scales"), packed_experts(rng, experts, rows, cols, std))
            yield ex + "gate_up_proj_bias", (0.02 * rng.standard_normal((experts, 2 * ffn))).astype(np.float32)
            yield ex + "down_proj_bias", (0.02 * rng.standard_normal((experts, h))).astype(np.float32)
            continue
        if arch == "granitemoe":
            moe = pre + "block_sparse_moe."
            yield moe + "router.layer.weight", matrix(rng, experts, h, 0.05)
            yield moe + "input_linear.weight", np.stack([matrix(rng, 2 * ffn, h, 0.02) for _ in range(experts)])
            yield moe + "output_linear.weight", np.stack([matrix(rng, h, ffn, 0.02 / np.sqrt(2 * L))
                                                           for _ in range(experts)])
            continue
        moe, (gate, up, down) = (("block_sparse_moe.", ("w1", "w3", "w2")) if arch == "mixtral"
                                 else ("mlp.", ("gate_proj", "up_proj", "down_proj")))
        if arch == "qwen2_moe":
            sh = pre + "mlp.shared_expert."
            yield sh + "gate_proj.weight", matrix(rng, QWEN2_MOE_SHARED, h, 0.02)
            yield sh + "up_proj.weight", matrix(rng, QWEN2_MOE_SHARED, h, 0.02)
            yield sh + "down_proj.weight", matrix(rng, h, QWEN2_MOE_SHARED, 0.02 / np.sqrt(2 * L))
            yield pre + "mlp.shared_expert_gate.weight", matrix(rng, 1, h, 0.05)
        yield pre + moe + "gate.weight", matrix(rng, experts, h, 0.05)
        for e in range(experts):
            ex = pre + moe + f"experts.{e}."
            yield ex + gate + ".weight", matrix(rng, ffn, h, 0.02)
            yield ex + up + ".weight", matrix(rng, ffn, h, 0.02)
            yield ex + down + ".weight", matrix(rng, h, ffn, 0.02 / np.sqrt(2 * L))
    yield "model.norm.weight", norm(h)
    if arch != "granitemoe":  # tied
        yield "lm_head.weight", matrix(rng, vocab, h, 0.02)


def tokenizer_size(folder):
    """Tokens in tokenizer.json (vocabulary plus added tokens), else in tokenizer.model."""
    path = os.path.join(folder, "tokenizer.json")
    if os.path.exists(path):
        with open(path) as f:
            t = json.load(f)
        ids = set(t["model"]["vocab"].values()) | {a["id"] for a in t.get("added_tokens", [])}
        return max(ids) + 1
    import sentencepiece  # noqa: PLC0415 (only for a tokenizer.model alone)
    return sentencepiece.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model")).vocab_size()


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
    if not vocab:
        vocab = tokenizer_size(a.tokenizer_dir)
        p = p[:9] + (vocab,) + p[10:]
    rng = np.random.default_rng(a.seed)
    total, n = write_checkpoint(a.out, tensors(p, L, rng), a.shard_mb)
    cfg = {"hidden_size": h, "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv,
           "vocab_size": vocab, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": theta,
           "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 1,
           "eos_token_id": 2, "num_experts_per_tok": used}
    if arch == "granitemoe":
        cfg.update({"architectures": ["GraniteMoeForCausalLM"], "model_type": "granitemoe", "intermediate_size": ffn,
                    "num_local_experts": experts, "tie_word_embeddings": True, "embedding_multiplier": 12.0,
                    "residual_multiplier": 0.22, "attention_multiplier": 0.015625, "logits_scaling": 6.0,
                    "position_embedding_type": "rope", "attention_bias": False, "rms_norm_eps": 1e-6})
    elif arch == "qwen2_moe":
        cfg.update({"architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "intermediate_size": 5632,
                    "moe_intermediate_size": ffn, "shared_expert_intermediate_size": QWEN2_MOE_SHARED,
                    "num_experts": experts, "norm_topk_prob": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
                    "use_sliding_window": False, "sliding_window": None})
    elif arch == "gpt_oss":
        cfg.update({"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "intermediate_size": ffn,
                    "num_local_experts": experts, "head_dim": hd, "attention_bias": True, "sliding_window": 128,
                    "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(L)],
                    "swiglu_limit": 7.0, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
                    "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                     "original_max_position_embeddings": 4096, "truncate": False},
                    "quantization_config": {"quant_method": "mxfp4"}})
    elif arch == "mixtral":
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
