#!/usr/bin/env python3
"""Float64 NumPy forward pass written from the Hugging Face modelling code of the
architectures qrun runs (modeling_llama, _qwen2, _qwen3, _qwen3_moe, _mixtral, _gemma2, _gemma3, _smollm3, _phi3,
_granite, _granitemoe, _qwen2_moe, _gpt_oss and the rope
initialisers of modeling_rope_utils), plus tiny synthetic checkpoints that use each
real model's tensor names and config fields. Independent of qrun: the C++ tests compare
qrun's logits and greedy tokens with what this prints.

  hf_reference.py make ARCH OUT_DIR
writes OUT_DIR/config.json, model.safetensors, the stories260K tokenizer files, and
OUT_DIR/reference.json: {"tokens": [...], "logits": [[vocab floats] per position],
"greedy": [16 ids after the tokens], "margins": [the top-2 logit gap at each greedy step]}.
ARCH: llama, llama-bias, llama-yarn, qwen2, qwen3, qwen3moe, mixtral, gemma2, gemma3, gemma3-mm, smollm3, phi3, phi3-long,
phi4-mini, granite, granitemoe, qwen2moe, gpt-oss, gpt-oss-unquantized.
gpt-oss's experts are stored as OpenAI's checkpoints store them: MXFP4 _blocks and _scales
(U8) tensors, which the reference reads back dequantized.
gemma3-mm is a Gemma3ForConditionalGeneration checkpoint: config.json nests the text
model's fields in text_config (most left at Gemma3TextConfig's defaults), its tensors sit
under "language_model.", beside vision-tower tensors qrun must skip.
"""
import json
import math
import os
import shutil
import struct
import sys

import numpy as np

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")
VOCAB = 512  # the stories260K tokenizer

# ---------------------------------------------------------------- checkpoints


def base_config(**kw):
    c = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=256, rms_norm_eps=1e-5,
             rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    c.update(kw)
    return c


def configs(arch):
    if arch == "llama":
        return base_config(architectures=["LlamaForCausalLM"], model_type="llama")
    if arch == "llama-bias":  # attention_bias: q, k, v and o_proj biases
        return base_config(architectures=["LlamaForCausalLM"], model_type="llama", attention_bias=True)
    if arch == "llama-yarn":
        return base_config(architectures=["LlamaForCausalLM"], model_type="llama", max_position_embeddings=1024,
                           rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256,
                                         "beta_fast": 32.0, "beta_slow": 1.0})
    if arch == "qwen2":
        return base_config(architectures=["Qwen2ForCausalLM"], model_type="qwen2", tie_word_embeddings=True)
    if arch == "qwen3":
        return base_config(architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=24,
                           tie_word_embeddings=True, attention_bias=False, rope_theta=1000000.0)
    if arch == "qwen3moe":
        # 8 experts of 32, 3 per token with their weights left as the softmax gave them
        # (norm_topk_prob false); intermediate_size belongs to dense layers, which it has none of.
        return base_config(architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", head_dim=24,
                           tie_word_embeddings=False, attention_bias=False, rope_theta=1000000.0, num_experts=8,
                           num_experts_per_tok=3, moe_intermediate_size=32, norm_topk_prob=False,
                           decoder_sparse_step=1, mlp_only_layers=[], router_aux_loss_coef=0.001)
    if arch == "qwen2moe":
        # Qwen1.5-MoE's recipe: 6 experts of 24, 3 per token, weights as the softmax gave them,
        # q/k/v biases, and a shared expert of 56 every token runs (intermediate_size: none).
        # (With 2 per token this seed's router nearly ties, 0.001 apart, where q8 may swap.)
        return base_config(architectures=["Qwen2MoeForCausalLM"], model_type="qwen2_moe", num_experts=6,
                           num_experts_per_tok=3, moe_intermediate_size=24, shared_expert_intermediate_size=56,
                           norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[], use_sliding_window=False,
                           sliding_window=None, rope_theta=1000000.0, router_aux_loss_coef=0.001)
    if arch == "gpt-oss-unquantized":  # the same model as transformers saves it unquantized (fine-tunes)
        return {k: v for k, v in configs("gpt-oss").items() if k != "quantization_config"}
    if arch == "gpt-oss":
        # gpt-oss-20b's recipe at toy width: 8 experts of 160 (MXFP4 needs widths of 32s), 2 per
        # token, biases everywhere, sinks, a window of 6 on layers 0 and 2, YaRN as released
        # (truncate false: fractional ramp bounds).
        return base_config(architectures=["GptOssForCausalLM"], model_type="gpt_oss", intermediate_size=160,
                           head_dim=16, num_local_experts=8, num_experts_per_tok=2, attention_bias=True,
                           sliding_window=6, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                           swiglu_limit=7.0, rope_theta=150000.0, max_position_embeddings=131072,
                           rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                         "original_max_position_embeddings": 4096, "truncate": False},
                           router_aux_loss_coef=0.9, output_router_logits=False, hidden_act="silu",
                           quantization_config={"quant_method": "mxfp4",
                                                "modules_to_not_convert": ["model.layers.*.self_attn",
                                                                           "model.layers.*.mlp.router",
                                                                           "model.embed_tokens", "lm_head"]})
    if arch == "mixtral":
        # 6 experts of intermediate_size, 2 per token, renormalized (as every Mixtral).
        return base_config(architectures=["MixtralForCausalLM"], model_type="mixtral", intermediate_size=40,
                           num_local_experts=6, num_experts_per_tok=2, sliding_window=None, router_jitter_noise=0.0)
    if arch in ("granite", "granitemoe"):
        # Granite's multipliers at values of the released models' kind (none of them 1, the
        # attention's not 1/sqrt(head_dim)); granitemoe: 6 experts of intermediate_size, 2 per token.
        # granite's head is its (small) embedding, so its logits are scaled up rather than down.
        multipliers = dict(embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.2,
                           rope_theta=10000000.0, attention_bias=False)
        if arch == "granite":
            return base_config(architectures=["GraniteForCausalLM"], model_type="granite", tie_word_embeddings=True,
                               mlp_bias=False, logits_scaling=0.25, **multipliers)
        return base_config(architectures=["GraniteMoeForCausalLM"], model_type="granitemoe", intermediate_size=40,
                           num_local_experts=6, num_experts_per_tok=2, position_embedding_type="rope",
                           logits_scaling=8.0, **multipliers)
    if arch == "gemma2":
        return base_config(architectures=["Gemma2ForCausalLM"], model_type="gemma2", head_dim=32,
                           query_pre_attn_scalar=24, sliding_window=6, final_logit_softcapping=30.0,
                           attn_logit_softcapping=50.0, hidden_activation="gelu_pytorch_tanh",
                           tie_word_embeddings=True, num_hidden_layers=4, rms_norm_eps=1e-6)
    if arch == "gemma3":
        # Layer 5 global (sliding_window_pattern 6, as every Gemma 3), the others in a
        # window of 5 with their own RoPE base; linear scaling on the global layer only.
        # (gemma3-mm takes another period.)
        return base_config(architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", head_dim=32,
                           query_pre_attn_scalar=24, sliding_window=5, sliding_window_pattern=6,
                           final_logit_softcapping=None, attn_logit_softcapping=None,
                           hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, num_hidden_layers=6,
                           rms_norm_eps=1e-6, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                           rope_scaling={"rope_type": "linear", "factor": 8.0})
    if arch == "gemma3-mm":
        # 8 head rows past the tokenizer's 512 ids, as Gemma 3 4B has 64 past its 262,144.
        text = dict(model_type="gemma3_text", hidden_size=64, intermediate_size=96, num_hidden_layers=4,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=VOCAB + 8,
                    max_position_embeddings=256, query_pre_attn_scalar=16, sliding_window=6,
                    layer_types=["sliding_attention", "full_attention"] * 2)
        return dict(architectures=["Gemma3ForConditionalGeneration"], model_type="gemma3", text_config=text,
                    vision_config={"model_type": "siglip_vision_model", "hidden_size": 8}, eos_token_id=[2, 106])
    if arch == "smollm3":
        # Llama's recipe with no RoPE on every fourth layer (no_rope_layers: 1 rotates).
        return base_config(architectures=["SmolLM3ForCausalLM"], model_type="smollm3", num_hidden_layers=4,
                           no_rope_layers=[1, 1, 1, 0], no_rope_layer_interval=4, tie_word_embeddings=True,
                           rope_theta=5000000.0, use_sliding_window=False, sliding_window=None)
    if arch in ("phi3", "phi3-long"):
        # phi3: the 24 test tokens are within original_max_position_embeddings (short
        # factors); phi3-long: the 40 test tokens are beyond it (long factors).
        c = base_config(architectures=["Phi3ForCausalLM"], model_type="phi3", num_key_value_heads=4,
                        sliding_window=7, max_position_embeddings=1024,
                        original_max_position_embeddings=64 if arch == "phi3" else 16, hidden_act="silu")
        half = 64 // 4 // 2
        rng = np.random.default_rng(7)
        c["rope_scaling"] = {"type": "longrope",
                             "short_factor": [float(x) for x in 1.0 + rng.random(half)],
                             "long_factor": [float(x) for x in 1.0 + 4.0 * rng.random(half)]}
        return c
    if arch == "phi4-mini":
        c = base_config(architectures=["Phi3ForCausalLM"], model_type="phi3", partial_rotary_factor=0.75,
                        tie_word_embeddings=True, max_position_embeddings=1024, original_max_position_embeddings=256,
                        hidden_act="silu", head_dim=16)
        rot_half = int(16 * 0.75) // 2
        rng = np.random.default_rng(8)
        c["rope_scaling"] = {"type": "longrope",
                             "short_factor": [float(x) for x in 1.0 + rng.random(rot_half)],
                             "long_factor": [float(x) for x in 1.0 + 3.0 * rng.random(rot_half)]}
        return c
    raise SystemExit("unknown arch " + arch)


GEMMA3_TEXT_DEFAULTS = dict(  # transformers' Gemma3TextConfig
    vocab_size=262208, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26, num_attention_heads=8,
    num_key_value_heads=4, head_dim=256, hidden_activation="gelu_pytorch_tanh", max_position_embeddings=131072,
    rms_norm_eps=1e-6, rope_theta=1000000.0, rope_local_base_freq=10000.0, query_pre_attn_scalar=256,
    sliding_window=4096, sliding_window_pattern=6, final_logit_softcapping=None, attn_logit_softcapping=None,
    rope_scaling=None, tie_word_embeddings=True)


def text_config(c):
    """The language model's config, as transformers builds it."""
    if c["model_type"] == "gemma3":
        return {**GEMMA3_TEXT_DEFAULTS, **c["text_config"]}
    if c["model_type"] == "gemma3_text":
        return {**GEMMA3_TEXT_DEFAULTS, **c}
    return c


def head_dim(c):
    return c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])


def make_weights(arch, c, rng):
    d, f, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    hd, nh, nkv = head_dim(c), c["num_attention_heads"], c["num_key_value_heads"]
    mt = c["model_type"]
    w = {}

    def mat(rows, cols, scale=None):
        return (rng.standard_normal((rows, cols)) * (scale or 1.0 / math.sqrt(cols))).astype(np.float32)

    def vec(n, around):
        return (around + 0.1 * rng.standard_normal(n)).astype(np.float32)

    gemma = mt in ("gemma2", "gemma3_text")
    granite = mt in ("granite", "granitemoe")  # embeddings times 12, logits divided by logits_scaling
    norm_center = 0.0 if gemma else 1.0  # Gemma's norms multiply by (1 + w)
    w["model.embed_tokens.weight"] = mat(c["vocab_size"], d, 0.2 if gemma else 0.1 if granite else 1.0)
    w["model.embed_tokens.weight"][VOCAB:] *= 4  # rows without a token win the argmax unless left out
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = vec(d, norm_center)
        w[p + "post_attention_layernorm.weight"] = vec(d, norm_center)
        if mt == "phi3":
            w[p + "self_attn.qkv_proj.weight"] = mat(nh * hd + 2 * nkv * hd, d)
            w[p + "mlp.gate_up_proj.weight"] = mat(2 * f, d)
        else:
            w[p + "self_attn.q_proj.weight"] = mat(nh * hd, d)
            w[p + "self_attn.k_proj.weight"] = mat(nkv * hd, d)
            w[p + "self_attn.v_proj.weight"] = mat(nkv * hd, d)
            if not moe_names(c, l) and mt not in ("granitemoe", "gpt_oss"):
                w[p + "mlp.gate_proj.weight"] = mat(f, d)
                w[p + "mlp.up_proj.weight"] = mat(f, d)
        w[p + "self_attn.o_proj.weight"] = mat(d, nh * hd)
        if output_bias(c):
            w[p + "self_attn.o_proj.bias"] = (0.3 * rng.standard_normal(d)).astype(np.float32)
        moe = moe_names(c, l)
        if mt == "gpt_oss":
            e = n_experts(c)
            w[p + "self_attn.sinks"] = (0.5 + rng.standard_normal(nh)).astype(np.float32)
            w[p + "mlp.router.weight"] = mat(e, d, 3.0 / math.sqrt(d))
            w[p + "mlp.router.bias"] = (0.3 * rng.standard_normal(e)).astype(np.float32)
            # [experts, out, in] as the _blocks store them; gate and up rows interleaved.
            w[p + "mlp.experts.gate_up_proj"] = mxfp4_round(np.stack([mat(2 * f, d) for _ in range(e)]))
            w[p + "mlp.experts.down_proj"] = mxfp4_round(np.stack([mat(d, f) for _ in range(e)]))
            w[p + "mlp.experts.gate_up_proj_bias"] = (0.3 * rng.standard_normal((e, 2 * f))).astype(np.float32)
            w[p + "mlp.experts.down_proj_bias"] = (0.3 * rng.standard_normal((e, d))).astype(np.float32)
        elif mt == "granitemoe":  # every expert's gate and up rows in one 3-D tensor, the down rows in another
            e = n_experts(c)
            w[p + "block_sparse_moe.router.layer.weight"] = mat(e, d, 3.0 / math.sqrt(d))
            w[p + "block_sparse_moe.input_linear.weight"] = np.stack([mat(2 * f, d) for _ in range(e)])
            w[p + "block_sparse_moe.output_linear.weight"] = np.stack([mat(d, f) for _ in range(e)])
        elif moe:
            router, gate, up, down, ef = moe
            # Routers of trained models give some experts clearly more weight than others.
            w[router] = mat(n_experts(c), d, 3.0 / math.sqrt(d))
            for e in range(n_experts(c)):
                w[gate.format(e)], w[up.format(e)], w[down.format(e)] = mat(ef, d), mat(ef, d), mat(d, ef)
            if mt == "qwen2_moe":
                sf = c["shared_expert_intermediate_size"]
                w[p + "mlp.shared_expert.gate_proj.weight"] = mat(sf, d)
                w[p + "mlp.shared_expert.up_proj.weight"] = mat(sf, d)
                w[p + "mlp.shared_expert.down_proj.weight"] = mat(d, sf)
                w[p + "mlp.shared_expert_gate.weight"] = mat(1, d, 2.0 / math.sqrt(d))
        elif mt != "granitemoe":
            w[p + "mlp.down_proj.weight"] = mat(d, f)
        if qkv_bias(c):
            for n, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                w[p + f"self_attn.{n}_proj.bias"] = (0.3 * rng.standard_normal(rows)).astype(np.float32)
        if mt in ("qwen3", "qwen3_moe", "gemma3_text"):
            w[p + "self_attn.q_norm.weight"] = vec(hd, norm_center)
            w[p + "self_attn.k_norm.weight"] = vec(hd, norm_center)
        if gemma:
            w[p + "pre_feedforward_layernorm.weight"] = vec(d, norm_center)
            w[p + "post_feedforward_layernorm.weight"] = vec(d, norm_center)
    w["model.norm.weight"] = vec(d, norm_center)
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = mat(c["vocab_size"], d, c["logits_scaling"] / math.sqrt(d) if granite else None)
    return w


def qkv_bias(c):
    """Qwen2's q/k/v biases are always there; Llama's family has them with attention_bias."""
    return c["model_type"] in ("qwen2", "qwen2_moe") or bool(c.get("attention_bias"))


def output_bias(c):
    """attention_bias gives o_proj a bias too, except in Qwen2's code."""
    return c["model_type"] not in ("qwen2", "qwen2_moe") and bool(c.get("attention_bias"))


def n_experts(c):
    return c.get("num_experts") or c.get("num_local_experts") or 0


def moe_names(c, l):
    """A mixture-of-experts layer's router, gate, up and down names ({} for the expert)
    and the experts' width; None for a dense layer."""
    p = f"model.layers.{l}."
    if c["model_type"] in ("qwen3_moe", "qwen2_moe"):
        e = p + "mlp.experts.{}."
        return p + "mlp.gate.weight", e + "gate_proj.weight", e + "up_proj.weight", e + "down_proj.weight", c["moe_intermediate_size"]
    if c["model_type"] == "mixtral":
        e = p + "block_sparse_moe.experts.{}."
        return p + "block_sparse_moe.gate.weight", e + "w1.weight", e + "w3.weight", e + "w2.weight", c["intermediate_size"]
    return None


def sparse_moe(c, W, l, x):
    """Qwen3MoeSparseMoeBlock / MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock: softmax over
    the router's logits, the top k, renormalized when norm_topk_prob (always for Mixtral),
    weighted experts; Qwen2-MoE adds its shared expert times sigmoid(shared_expert_gate x)."""
    router, gate, up, down, _ = moe_names(c, l)
    logits = x @ W[router].T
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    k = c["num_experts_per_tok"]
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        top = np.argsort(-probs[t], kind="stable")[:k]
        weights = probs[t][top]
        if c["model_type"] == "mixtral" or c.get("norm_topk_prob"):
            weights = weights / weights.sum()
        for e, wt in zip(top, weights):
            h = silu(x[t] @ W[gate.format(e)].T) * (x[t] @ W[up.format(e)].T)
            out[t] += wt * (h @ W[down.format(e)].T)
    if c["model_type"] == "qwen2_moe":
        p = f"model.layers.{l}.mlp."
        h = silu(x @ W[p + "shared_expert.gate_proj.weight"].T) * (x @ W[p + "shared_expert.up_proj.weight"].T)
        gate_w = 1.0 / (1.0 + np.exp(-(x @ W[p + "shared_expert_gate.weight"].T)))  # [T, 1]
        out += gate_w * (h @ W[p + "shared_expert.down_proj.weight"].T)
    return out


def top_k_softmax(logits, k):
    """The k largest logits' experts and a softmax over those logits (Mixtral's
    renormalized top k, GraniteMoe's and gpt-oss's routers)."""
    top = np.argsort(-logits, kind="stable")[:k]
    weights = np.exp(logits[top] - logits[top].max())
    return top, weights / weights.sum()


def granite_moe(c, W, l, x):
    """GraniteMoeMoE: a softmax over the k largest router logits; each expert's
    input_linear rows are its gate then its up projection."""
    p = f"model.layers.{l}.block_sparse_moe."
    logits = x @ W[p + "router.layer.weight"].T
    k, f = c["num_experts_per_tok"], c["intermediate_size"]
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for e, wt in zip(*top_k_softmax(logits[t], k)):
            gate_up = W[p + "input_linear.weight"][e] @ x[t]
            out[t] += wt * (W[p + "output_linear.weight"][e] @ (silu(gate_up[:f]) * gate_up[f:]))
    return out


FP4_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def mxfp4_codes(x):
    """Rows of x (last axis a multiple of 32) as MXFP4: E2M1 code indices and, per block of
    32, an exponent: each block's largest |value| / 2^exponent is at most 6."""
    blocks = x.reshape(*x.shape[:-1], x.shape[-1] // 32, 32).astype(np.float64)
    amax = np.abs(blocks).max(axis=-1)
    exponent = np.ceil(np.log2(np.maximum(amax, 1e-30) / 6.0)).astype(np.int64)
    scaled = blocks / np.exp2(exponent)[..., None]
    codes = np.abs(scaled[..., None] - FP4_VALUES).argmin(axis=-1)
    return codes, exponent


def mxfp4_round(x):
    """x rounded to what MXFP4 can hold (the weights the reference runs)."""
    codes, exponent = mxfp4_codes(x)
    return (FP4_VALUES[codes] * np.exp2(exponent)[..., None]).reshape(x.shape).astype(np.float32)


def mxfp4_pack(x):
    """OpenAI's _blocks [..., groups, 16] (two codes a byte, the first in the low nibble)
    and _scales [..., groups] (exponent + 127)."""
    codes, exponent = mxfp4_codes(x)
    blocks = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)
    return blocks, (exponent + 127).astype(np.uint8)


def stored_tensors(c, w):
    """The checkpoint's tensors: gpt-oss's experts packed as MXFP4 pairs, or without a
    quantization_config as transformers' GptOssExperts hold them, [experts, in, out]."""
    if c.get("model_type") != "gpt_oss":
        return w
    out = {}
    for name, t in w.items():
        if not name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            out[name] = t
        elif "quantization_config" in c:
            out[name + "_blocks"], out[name + "_scales"] = mxfp4_pack(t)
        else:
            out[name] = np.ascontiguousarray(t.transpose(0, 2, 1))
    return out


def gpt_oss_moe(c, W, l, x):
    """GptOssMLP: a softmax over the k largest biased router logits; each expert's gate and
    up outputs interleaved, clamped at swiglu_limit, (up + 1) * gate * sigmoid(1.702 gate)."""
    p = f"model.layers.{l}.mlp."
    logits = x @ W[p + "router.weight"].T + W[p + "router.bias"]
    k, limit = c["num_experts_per_tok"], c["swiglu_limit"]
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for e, wt in zip(*top_k_softmax(logits[t], k)):
            gate_up = W[p + "experts.gate_up_proj"][e] @ x[t] + W[p + "experts.gate_up_proj_bias"][e]
            gate, up = np.minimum(gate_up[0::2], limit), np.clip(gate_up[1::2], -limit, limit)
            glu = gate / (1 + np.exp(-1.702 * gate))
            out[t] += wt * (W[p + "experts.down_proj"][e] @ ((up + 1) * glu) + W[p + "experts.down_proj_bias"][e])
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        raw = t.dtype == np.uint8
        b = np.ascontiguousarray(t, dtype=np.uint8 if raw else "<f4").tobytes()
        header[name] = {"dtype": "U8" if raw else "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(h)))
        out.write(h)
        for b in blobs:
            out.write(b)


# ---------------------------------------------------------------- reference forward


def rope_params(c, local=False):
    """inv_freq over the rotary dims and the attention factor (modeling_rope_utils).
    local: Gemma 3's sliding layers, base rope_local_base_freq and no scaling."""
    hd = head_dim(c)
    dim = int(hd * c.get("partial_rotary_factor", 1.0))
    base = c["rope_local_base_freq"] if local else c["rope_theta"]
    rs = {} if local else (c.get("rope_scaling") or {})
    kind = rs.get("rope_type", rs.get("type", "default"))
    pos = np.arange(0, dim, 2, dtype=np.float64) / dim
    if kind == "default":
        return 1.0 / base ** pos, 1.0, dim
    if kind == "linear":
        return 1.0 / base ** pos / rs["factor"], 1.0, dim
    if kind == "yarn":
        factor = rs["factor"]
        orig = rs.get("original_max_position_embeddings") or c["max_position_embeddings"]
        attention_factor = rs.get("attention_factor") or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
        beta_fast, beta_slow = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1

        def corr_dim(rot):
            return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

        low, high = corr_dim(beta_fast), corr_dim(beta_slow)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
        extrapolation = 1 - ramp
        pos_freqs = base ** pos
        inv = (1.0 / (factor * pos_freqs)) * (1 - extrapolation) + (1.0 / pos_freqs) * extrapolation
        return inv, attention_factor, dim
    if kind == "longrope":
        orig = c.get("original_max_position_embeddings", c["max_position_embeddings"])
        factor = c["max_position_embeddings"] / orig
        attention_factor = math.sqrt(1 + math.log(factor) / math.log(orig)) if factor > 1 else 1.0
        return pos, attention_factor, dim  # the caller picks short or long factors
    raise SystemExit("unknown rope " + kind)


def rms_norm(x, w, eps, gemma=False):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y * (1.0 + w) if gemma else y * w


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1 + np.exp(-x))


def forward(c, w, tokens):
    mt = c["model_type"]
    gemma = mt in ("gemma2", "gemma3_text")
    W = {k: v.astype(np.float64) for k, v in w.items()}
    T = len(tokens)
    d, L, eps = c["hidden_size"], c["num_hidden_layers"], c["rms_norm_eps"]
    hd, nh, nkv = head_dim(c), c["num_attention_heads"], c["num_key_value_heads"]
    inv, attn_factor, rot = rope_params(c)
    rs = c.get("rope_scaling") or {}
    if rs.get("rope_type", rs.get("type")) == "longrope":
        orig = c.get("original_max_position_embeddings", c["max_position_embeddings"])
        ext = np.array(rs["long_factor"] if T > orig else rs["short_factor"], dtype=np.float64)
        inv = 1.0 / (ext * c["rope_theta"] ** inv)

    def tables(inv, attn_factor):
        ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
        return np.cos(ang) * attn_factor, np.sin(ang) * attn_factor

    global_rope = tables(inv, attn_factor)
    local_rope = tables(*rope_params(c, local=True)[:2]) if mt == "gemma3_text" else global_rope

    def rope(x, cos_sin):  # x: [T, heads, hd]; rotate-half over the first `rot` dims
        cos, sin = cos_sin
        r, rest = x[..., :rot], x[..., rot:]
        half = rot // 2
        a, b = r[..., :half], r[..., half:]
        cs, sn = cos[:, None, :], sin[:, None, :]
        return np.concatenate([a * cs - b * sn, b * cs + a * sn, rest], axis=-1)

    def is_sliding(l):
        if mt == "gpt_oss":
            return c["layer_types"][l] == "sliding_attention"
        if mt == "gemma3_text":
            if c.get("layer_types"):
                return c["layer_types"][l] == "sliding_attention"
            return bool((l + 1) % c["sliding_window_pattern"])
        return window is not None and (not gemma or l % 2 == 0)

    granite = mt in ("granite", "granitemoe")
    scale = c["query_pre_attn_scalar"] ** -0.5 if gemma else c["attention_multiplier"] if granite else hd ** -0.5
    residual = c["residual_multiplier"] if granite else 1.0
    window = c.get("sliding_window") if mt in ("gemma2", "gemma3_text", "phi3", "mistral", "mixtral", "gpt_oss") else None
    h = W["model.embed_tokens.weight"][tokens]
    if gemma:
        h = h * math.sqrt(d)
    if granite:
        h = h * c["embedding_multiplier"]
    for l in range(L):
        p = f"model.layers.{l}."
        x = rms_norm(h, W[p + "input_layernorm.weight"], eps, gemma)
        if mt == "phi3":
            qkv = x @ W[p + "self_attn.qkv_proj.weight"].T
            q, k, v = np.split(qkv, [nh * hd, nh * hd + nkv * hd], axis=-1)
        else:
            q = x @ W[p + "self_attn.q_proj.weight"].T
            k = x @ W[p + "self_attn.k_proj.weight"].T
            v = x @ W[p + "self_attn.v_proj.weight"].T
        if qkv_bias(c):
            q, k, v = q + W[p + "self_attn.q_proj.bias"], k + W[p + "self_attn.k_proj.bias"], v + W[p + "self_attn.v_proj.bias"]
        q, k, v = q.reshape(T, nh, hd), k.reshape(T, nkv, hd), v.reshape(T, nkv, hd)
        if mt in ("qwen3", "qwen3_moe", "gemma3_text"):
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps, gemma)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps, gemma)
        sliding = is_sliding(l)
        cos_sin = local_rope if sliding else global_rope
        if mt != "smollm3" or c["no_rope_layers"][l]:
            q, k = rope(q, cos_sin), rope(k, cos_sin)
        group = nh // nkv
        out = np.zeros((T, nh, hd))
        for hh in range(nh):
            s = (q[:, hh, :] @ k[:, hh // group, :].T) * scale
            if gemma and c.get("attn_logit_softcapping"):
                cap = c["attn_logit_softcapping"]
                s = np.tanh(s / cap) * cap
            i, j = np.arange(T)[:, None], np.arange(T)[None, :]
            mask = j > i
            if sliding:
                mask |= (i - j) >= window
            s = np.where(mask, -np.inf, s)
            if mt == "gpt_oss":  # the sink joins each row's softmax, then is dropped
                s = np.concatenate([s, np.full((T, 1), W[p + "self_attn.sinks"][hh])], axis=-1)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            s = s[:, :T]
            out[:, hh, :] = s @ v[:, hh // group, :]
        a = out.reshape(T, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        if output_bias(c):
            a = a + W[p + "self_attn.o_proj.bias"]
        if gemma:
            a = rms_norm(a, W[p + "post_attention_layernorm.weight"], eps, True)
            h = h + a
            x = rms_norm(h, W[p + "pre_feedforward_layernorm.weight"], eps, True)
        else:
            h = h + a * residual
            x = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        if mt == "granitemoe":
            m = granite_moe(c, W, l, x)
        elif mt == "gpt_oss":
            m = gpt_oss_moe(c, W, l, x)
        elif moe_names(c, l):
            m = sparse_moe(c, W, l, x)
        else:
            if mt == "phi3":
                gate, up = np.split(x @ W[p + "mlp.gate_up_proj.weight"].T, 2, axis=-1)
            else:
                gate, up = x @ W[p + "mlp.gate_proj.weight"].T, x @ W[p + "mlp.up_proj.weight"].T
            m = ((gelu_tanh(gate) if gemma else silu(gate)) * up) @ W[p + "mlp.down_proj.weight"].T
        if gemma:
            m = rms_norm(m, W[p + "post_feedforward_layernorm.weight"], eps, True)
        h = h + m * residual
    h = rms_norm(h, W["model.norm.weight"], eps, gemma)  # last_hidden_state: what embeddings pool
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    logits = h @ head.T
    if granite:
        logits = logits / c["logits_scaling"]
    if gemma and c.get("final_logit_softcapping"):
        cap = c["final_logit_softcapping"]
        logits = np.tanh(logits / cap) * cap
    return logits, h


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "make":
        raise SystemExit(__doc__)
    arch, out = sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    c = configs(arch)
    tc = text_config(c)
    rng = np.random.default_rng(sum(map(ord, arch.removesuffix("-unquantized"))))  # gpt-oss-unquantized: gpt-oss's weights
    w = make_weights(arch, tc, rng)
    stored = w
    if c["model_type"] == "gemma3":  # transformers 4.50's multimodal layout
        stored = {"language_model." + k: v for k, v in w.items()}
        stored["vision_tower.vision_model.embeddings.patch_embedding.weight"] = rng.standard_normal((8, 3)).astype(np.float32)
        stored["multi_modal_projector.mm_input_projection_weight"] = rng.standard_normal((8, 64)).astype(np.float32)
    write_safetensors(os.path.join(out, "model.safetensors"), stored_tensors(c, stored))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    stories = os.path.join(SHARED, "models", "stories260K")
    for name in ("tokenizer.model", "tokenizer_config.json"):
        if os.path.exists(os.path.join(stories, name)):
            shutil.copy(os.path.join(stories, name), out)
    n = 40 if arch == "phi3-long" else 24  # phi3-long: longer than original_max_position_embeddings
    tokens = [1] + [int(t) for t in np.random.default_rng(3).integers(3, VOCAB, n - 1)]
    logits, hidden = forward(tc, w, tokens)
    greedy, margins, seq = [], [], list(tokens)
    for _ in range(16):  # greedy over the tokenizer's ids only
        last = forward(tc, w, seq)[0][-1][:VOCAB]
        nxt = int(np.argmax(last))
        top2 = np.sort(last)[-2:]
        greedy.append(nxt)
        margins.append(float(top2[1] - top2[0]))  # how near a tie each greedy choice was
        seq.append(nxt)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"tokens": tokens, "logits": logits.tolist(), "hidden": hidden.tolist(), "greedy": greedy,
                   "margins": margins}, f)


if __name__ == "__main__":
    main()
