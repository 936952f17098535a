#!/usr/bin/env python3
"""Seeds for the fuzz targets that need more than a copy (fuzz/make_corpus.sh calls it).

    make_seeds.py SHARED_DIR CORPUS_DIR

Writes into CORPUS_DIR/<target>/: tokenizer.json files cut down from ../shared's
(their first few hundred pieces and the merges among them, so that each run takes
milliseconds, not the seconds a 10 MB vocabulary takes) and small synthetic
SentencePiece-style ones; chat templates from the tokenizer_config.json files and a
few hand-written ones; config.json variants of each supported architecture; a small
safetensors header with every dtype. Nothing here is committed: the corpus is built.
"""
import glob
import json
import os
import struct
import sys

SPACE = "\u2581"


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
        f.write(data)


def trim_tokenizer_json(src, keep=600, keep_added=24):
    """The first `keep` pieces, the merges among them, the first added tokens re-numbered."""
    with open(src, encoding="utf-8") as f:
        j = json.load(f)
    model = j["model"]
    vocab = {p: i for p, i in model["vocab"].items() if i < keep}
    merges = []
    for m in model["merges"]:
        a, b = (m if isinstance(m, list) else m.split(" ", 1))
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    model["vocab"] = vocab
    model["merges"] = merges
    added = []
    for n, t in enumerate(j.get("added_tokens", [])[:keep_added]):
        t = dict(t)
        t["id"] = keep + n
        added.append(t)
    j["added_tokens"] = added
    return json.dumps(j, ensure_ascii=False)


def sentencepiece_json(pre_tokenizer, normalizer, byte_fallback=True):
    """A Llama-2-like tokenizer.json: specials, <0xHH> bytes, letters and merged words."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for c in SPACE + "etaonihsrdlucmwfgypbvk,.!'":
        vocab.setdefault(c, len(vocab))
    merges = []
    for w in ["the", "once", "upon", "time", "there", "was", "little", "girl", "she", "happy"]:
        piece = SPACE
        for c in w:
            if piece + c not in vocab:
                vocab[piece + c] = len(vocab)
                merges.append(piece + " " + c)
            piece += c
    added = [{"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for p, i in list(vocab.items())[:3]]
    return json.dumps({
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": SPACE},
                                                       "content": " "}, {"type": "ByteFallback"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": byte_fallback,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }, ensure_ascii=False)


HAND_TEMPLATES = {
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
              "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
              "{% endif %}",
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
              "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
              "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
              "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
              "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
              "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
              "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
              "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
              "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
              "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    "zephyr": "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
              "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + "
              "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + "
              "message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n"
              "{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
    "features": "{#- namespaces, filters, tests, methods, slices, literals -#}\n"
                "{%- set ns = namespace(count=0, last='') -%}\n"
                "{%- for m in messages -%}\n"
                "  {%- if m.role == 'user' and m.content is string -%}{%- set ns.count = ns.count + 1 -%}{%- endif -%}\n"
                "  {{- loop.index }}/{{ loop.length }}:{{ m.content | trim | upper }} {{ m | tojson }}\n"
                "  {%- if not loop.last %}, {% else %}.{% endif -%}\n"
                "  {%- set ns.last = m['content'][::-1] -%}\n"
                "{%- endfor -%}\n"
                "{{ ns.count }} {{ ns.last }} {{ range(3) | join(',') }} {{ 'a,b'.split(',') | length }}\n"
                "{%- if tools is none and foo is not defined %} none{% endif %}\n"
                "{{ {'k': [1, 2, none, true, 'x' ~ 3]} | tojson }} {{ messages | length > 2 }}\n"
                "{{ (messages[-1].content | default('')).startswith('Tell') }} {{ 7 // 2 }} {{ -3 % 5 }}\n"
                "{%- for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }}{% endfor %}\n"
                "{%- if add_generation_prompt %}{{ bos_token }}{% endif -%}",
}

CONFIGS = {
    "qwen2": {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
              "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
              "vocab_size": 151936, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
              "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "hidden_act": "silu"},
    "mistral": {"architectures": ["MistralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
                "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                "vocab_size": 32000, "sliding_window": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}},
    "llama3": {"architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 8192,
               "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
               "vocab_size": 128256, "max_position_embeddings": 131072, "rope_theta": 500000.0,
               "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "head_dim": 64,
               "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                "original_max_position_embeddings": 8192, "rope_type": "llama3"}},
    "gemma3-4b": {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                  "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                                  "num_hidden_layers": 34, "sliding_window": 1024,
                                  "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}},
    "gemma3-1b": {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 1152,
                  "intermediate_size": 6912, "num_hidden_layers": 6, "num_attention_heads": 4,
                  "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144, "sliding_window": 512,
                  "layer_types": ["sliding_attention"] * 5 + ["full_attention"]},
    "qwen3moe": {"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048, "intermediate_size": 6144,
                 "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
                 "vocab_size": 151936, "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
                 "norm_topk_prob": True, "decoder_sparse_step": 1, "mlp_only_layers": []},
    "mixtral": {"architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
                "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
                "num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": None},
}


def safetensors_header():
    """A header with each dtype, a scalar, an empty tensor and __metadata__; data zeros."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dtype, shape, elem in [("a.f32", "F32", [2, 3], 4), ("b.f16", "F16", [4], 2),
                                     ("c.bf16", "BF16", [2, 2, 2], 2), ("scalar", "F32", [], 4),
                                     ("empty", "F16", [0, 5], 2)]:
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n * elem]}
        off += n * elem
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + bytes(off)


def gguf_lora_adapter():
    """A llama.cpp LoRA adapter file (GGUF v3) for the layer-0 q projection of an 8 x 8 model:
    general.type, adapter.type, adapter.lora.alpha and F32 lora_a [8, 2] / lora_b [2, 8]."""
    def s(text):
        b = text.encode()
        return struct.pack("<Q", len(b)) + b
    kvs = [(b"general.type", 8, s("adapter")), (b"adapter.type", 8, s("lora")),
           (b"adapter.lora.alpha", 6, struct.pack("<f", 4.0))]
    tensors = [("blk.0.attn_q.weight.lora_a", (8, 2)), ("blk.0.attn_q.weight.lora_b", (2, 8))]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + value
    offset = 0
    for name, ne in tensors:
        out += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", 0, offset)
        offset += 64  # 16 floats, a multiple of the 32-byte alignment
    out += b"\0" * ((-len(out)) % 32)
    return out + struct.pack("<32f", *[0.01 * i for i in range(32)])


def main():
    shared, out = sys.argv[1], sys.argv[2]
    tok_dir = os.path.join(out, "tokenizer_json")
    for path in sorted(glob.glob(os.path.join(shared, "tokenizers", "*", "tokenizer.json"))):
        name = os.path.basename(os.path.dirname(path))
        write(os.path.join(tok_dir, "seed-%s-trimmed.json" % name), trim_tokenizer_json(path))
    write(os.path.join(tok_dir, "seed-sentencepiece-prepend.json"), sentencepiece_json(
        None, {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SPACE},
                                                   {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]}))
    write(os.path.join(tok_dir, "seed-sentencepiece-metaspace.json"), sentencepiece_json(
        {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "first", "split": False}, None, False))
    write(os.path.join(tok_dir, "seed-sentencepiece-gemma.json"), sentencepiece_json(
        {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}))

    tmpl_dir = os.path.join(out, "chat_template")
    for path in sorted(glob.glob(os.path.join(shared, "**", "tokenizer_config.json"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            t = json.load(f).get("chat_template")
        name = os.path.basename(os.path.dirname(path))
        if isinstance(t, str):
            write(os.path.join(tmpl_dir, "seed-%s.jinja" % name), t)
        elif isinstance(t, list):
            for e in t:
                if isinstance(e, dict) and isinstance(e.get("template"), str):
                    write(os.path.join(tmpl_dir, "seed-%s-%s.jinja" % (name, e.get("name", "x"))), e["template"])
    for name, t in HAND_TEMPLATES.items():
        write(os.path.join(tmpl_dir, "seed-hand-%s.jinja" % name), t)

    for name, c in CONFIGS.items():
        write(os.path.join(out, "hf_config", "seed-%s.json" % name), json.dumps(c, indent=1))
    write(os.path.join(out, "safetensors", "seed-all-dtypes.safetensors"), safetensors_header())
    write(os.path.join(out, "lora_adapter", "seed-adapter.gguf"), gguf_lora_adapter())


if __name__ == "__main__":
    main()
