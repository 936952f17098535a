#!/usr/bin/env python3
"""Write a synthetic Gemma 3 checkpoint with the exact shapes of a real one, for speed and
memory measurements (../shared/tools/synth_hf.py has no Gemma preset; this reuses its
weight shapes and shard writer). Random weights, so the text it generates means nothing.

  synth_gemma3.py --preset gemma3-1b --tokenizer-dir ../shared/tokenizers/llama2 OUT_DIR

gemma3-1b is a Gemma3ForCausalLM; gemma3-4b the language model of a
Gemma3ForConditionalGeneration, written as transformers 4.50 does (config.json's
text_config with only the non-default fields, tensors under "language_model.") with a
token vision tower beside it, so the converter's multimodal path is what gets measured.
"""
import argparse
import sys

import numpy as np

from synth_shards import finish, matrix, write_checkpoint

PRESETS = {
    # hidden, layers, heads, kv heads, ffn, vocab, window, rope scaling factor
    "gemma3-1b": (1152, 26, 4, 1, 6912, 262144, 512, None),
    "gemma3-4b": (2560, 34, 8, 4, 10240, 262208, 1024, 8.0),
}
HEAD_DIM = 256


def tensors(p, rng):
    h, L, nh, nkv, ffn, vocab, _, _ = p
    norm = lambda n: (0.2 * rng.standard_normal(n)).astype(np.float32)  # Gemma's norms: 1 + w
    yield "model.embed_tokens.weight", matrix(rng, vocab, h, 0.02)
    for i in range(L):
        pre = f"model.layers.{i}."
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            yield pre + n + ".weight", norm(h)
        for name, rows in (("q_proj", nh * HEAD_DIM), ("k_proj", nkv * HEAD_DIM), ("v_proj", nkv * HEAD_DIM)):
            yield pre + f"self_attn.{name}.weight", matrix(rng, rows, h, 0.02)
        yield pre + "self_attn.q_norm.weight", norm(HEAD_DIM)
        yield pre + "self_attn.k_norm.weight", norm(HEAD_DIM)
        yield pre + "self_attn.o_proj.weight", matrix(rng, h, nh * HEAD_DIM, 0.02 / np.sqrt(2 * L))
        yield pre + "mlp.gate_proj.weight", matrix(rng, ffn, h, 0.02)
        yield pre + "mlp.up_proj.weight", matrix(rng, ffn, h, 0.02)
        yield pre + "mlp.down_proj.weight", matrix(rng, h, ffn, 0.02 / np.sqrt(2 * L))
    yield "model.norm.weight", norm(h)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--tokenizer-dir", required=True, help="folder with tokenizer.model and/or tokenizer.json")
    ap.add_argument("--shard-mb", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    p = PRESETS[a.preset]
    h, L, nh, nkv, ffn, vocab, window, factor = p
    multimodal = a.preset != "gemma3-1b"
    rng = np.random.default_rng(a.seed)

    def named():
        for name, t in tensors(p, rng):
            yield ("language_model." + name if multimodal else name), t
        if multimodal:  # a token vision tower: the converter must skip it
            yield "vision_tower.vision_model.embeddings.patch_embedding.weight", rng.standard_normal((16, 16)).astype(np.float32)

    total, n = write_checkpoint(a.out, named(), a.shard_mb)
    if multimodal:
        cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "eos_token_id": [1, 106],
               "text_config": {"hidden_size": h, "intermediate_size": ffn, "model_type": "gemma3_text",
                               "num_hidden_layers": L, "sliding_window": window,
                               "rope_scaling": {"factor": factor, "rope_type": "linear"}},
               "vision_config": {"model_type": "siglip_vision_model"}}
    else:
        cfg = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": h,
               "intermediate_size": ffn, "num_hidden_layers": L, "num_attention_heads": nh,
               "num_key_value_heads": nkv, "head_dim": HEAD_DIM, "vocab_size": vocab, "sliding_window": window,
               "sliding_window_pattern": 6, "max_position_embeddings": 32768, "query_pre_attn_scalar": 256,
               "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": None,
               "hidden_activation": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
               "final_logit_softcapping": None, "attn_logit_softcapping": None, "bos_token_id": 2, "eos_token_id": 1}
    finish(a.out, cfg, a.tokenizer_dir)
    print(f"{a.preset}: {total / 1e9:.2f} GB of weights in {n} shard(s) at {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
