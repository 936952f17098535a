#!/usr/bin/env bash
# Builds the fuzz targets' seed corpora from ../shared into OUT/<target>/seed-* (run by
# scripts/fuzz.sh; OUT is build-fuzz/corpus). ../shared is only read: nothing of it is
# copied into the repository, and the corpora are build outputs, never committed.
#   fuzz/make_corpus.sh QCONVERT OUT
set -euo pipefail
cd "$(dirname "$0")/.."
qconvert=$1
out=$2
shared=../shared
for t in model_file safetensors lora_adapter hf_config tokenizer_json tokenizer_model chat_template server_request option_text tokenizer_config json_prefix json_schema gbnf; do
  mkdir -p "$out/$t"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

u64_at() {  # FILE OFFSET: the little-endian uint64 there
  od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '
}

# model_file: stories260K (f32 and bf16 checkpoints) in each weight type. The seeds are
# the metadata only, bytes [0, data_offset): the harness pads the tensor data back.
for m in stories260K stories260K-bf16; do
  for type in q8 q4 f16 f32; do
    "$qconvert" "$shared/models/$m" -o "$tmp/$m.$type" --type "$type" >/dev/null
    head -c "$(u64_at "$tmp/$m.$type" 88)" "$tmp/$m.$type" >"$out/model_file/seed-$m-$type"
  done
done

# ...and a mixture of experts (the synthetic Qwen3-MoE test checkpoint; needs NumPy).
if /usr/bin/python3 tests/reference/hf_reference.py make qwen3moe "$tmp/qwen3moe" >/dev/null 2>&1; then
  "$qconvert" "$tmp/qwen3moe" -o "$tmp/qwen3moe.q4" --type q4 >/dev/null
  head -c "$(u64_at "$tmp/qwen3moe.q4" 88)" "$tmp/qwen3moe.q4" >"$out/model_file/seed-qwen3moe-q4"
fi

# safetensors: the headers of the shipped checkpoints (8 + header_len bytes; the harness
# pads the data area with zeros).
for m in stories260K stories260K-bf16; do
  f=$shared/models/$m/model.safetensors
  head -c "$((8 + $(u64_at "$f" 0)))" "$f" >"$out/safetensors/seed-$m"
done

# lora_adapter: PEFT adapter configs, and an adapter_model.safetensors (its 8-byte header
# length, the header, zeros for A [2, 8] and B [8, 2]).
printf '%s' '{"peft_type":"LORA","r":2,"lora_alpha":16,"use_rslora":true,"use_dora":false,"fan_in_fan_out":false,"alpha_pattern":{"model.layers.0.self_attn.q_proj":4},"target_modules":["q_proj","v_proj"]}' >"$out/lora_adapter/seed-config"
printf '%s' '{"peft_type":"LORA","r":2,"lora_alpha":2}' >"$out/lora_adapter/seed-config-min"
header='{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":{"dtype":"F32","shape":[2,8],"data_offsets":[0,64]},"base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight":{"dtype":"F32","shape":[8,2],"data_offsets":[64,128]},"base_model.model.model.norm.weight":{"dtype":"F32","shape":[8],"data_offsets":[128,160]}}'
{
  printf "$(printf '\\x%02x' $((${#header} & 255)) $((${#header} >> 8 & 255)) 0 0 0 0 0 0)"
  printf '%s' "$header"
  head -c 160 /dev/zero
} >"$out/lora_adapter/seed-weights"

# hf_config and tokenizer_model: the shipped files as they are.
for f in "$shared"/models/*/config.json; do
  install -m 644 "$f" "$out/hf_config/seed-$(basename "$(dirname "$f")").json"
done
# ...and a sentence-transformers model's pooling files (the target reads its input as those too).
printf '%s' '{"word_embedding_dimension":1024,"pooling_mode_cls_token":false,"pooling_mode_mean_tokens":false,"pooling_mode_lasttoken":true}' >"$out/hf_config/seed-pooling"
printf '%s' '[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]' >"$out/hf_config/seed-modules"
for f in "$shared"/models/stories260K/tokenizer.model "$shared"/tokenizers/*/tokenizer.model; do
  install -m 644 "$f" "$out/tokenizer_model/seed-$(basename "$(dirname "$f")").model"
done

# server_request: OpenAI request bodies, chat and completion, streamed or not, with tools, a
# Responses body, an Anthropic Messages body;
# and a model reply with tool calls.
printf '%s' '{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.7,"max_tokens":32,"stream":true,"stream_options":{"include_usage":true}}' >"$out/server_request/seed-chat"
printf '%s' '{"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]},{"role":"assistant","content":"Hello"},{"role":"user","content":"More"}],"stop":["\n","User:"],"seed":42,"top_k":40,"min_p":0.05,"n":1}' >"$out/server_request/seed-parts"
printf '%s' '{"prompt":"Once upon a time","max_tokens":16,"top_p":0.9,"stop":"The end","ignore_eos":false,"repeat_penalty":1.1}' >"$out/server_request/seed-completion"
printf '%s' '{"prompt":["Once"],"max_completion_tokens":4,"stream":false}' >"$out/server_request/seed-prompt-list"
printf '%s' '{"prompt":"Once upon a time","n_predict":16,"temperature":0.7,"top_k":40,"stream":true,"stop":["\n"],"mirostat":0,"typical_p":1,"seed":-1,"cache_prompt":true,"json_schema":{"type":"object","properties":{"a":{"type":"string"}}}}' >"$out/server_request/seed-llama-completion"
printf '%s' '{"input_prefix":"def add(a, b):\n    ","input_suffix":"\n","prompt":"return","input_extra":[{"filename":"util.py","text":"import math\n"}],"n_predict":16,"temperature":0}' >"$out/server_request/seed-infill"
printf '%s' '{"model":"m","input":["Once upon a time",[1,403,0]],"encoding_format":"base64","dimensions":32}' >"$out/server_request/seed-embeddings"
printf '%s' '{"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"21"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string","enum":["Paris","Rome"]}},"required":["city"]}}}],"tool_choice":"required","parallel_tool_calls":false}' >"$out/server_request/seed-tools"
printf '%s' '{"model":"claude","max_tokens":64,"system":[{"type":"text","text":"Be brief."}],"stop_sequences":["END"],"tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},{"type":"web_search_20250305","name":"web_search"}],"tool_choice":{"type":"any","disable_parallel_tool_use":true},"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"21"}],"is_error":false},{"type":"text","text":"Thanks"}]}]}' >"$out/server_request/seed-anthropic"
printf '%s' '{"model":"gpt-5","instructions":"Be brief.","max_output_tokens":64,"text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"}}},"reasoning":{"effort":"none"},"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}},{"type":"web_search"}],"tool_choice":"auto","input":[{"role":"user","content":[{"type":"input_text","text":"Weather?"}]},{"type":"reasoning","summary":[{"type":"summary_text","text":"s"}]},{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},{"type":"function_call_output","call_id":"call_1","output":"21"}]}' >"$out/server_request/seed-responses"
printf 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>{"name": "now", "parameters": {}}' >"$out/server_request/seed-tool-reply"

# json_prefix: JSON objects as a model might write them.
printf '%s' '{"name": "Tim", "age": 3, "toys": ["car", {"ball": true}], "x": -0.5e-3, "y": null, "s": "a\n\u00e9\ud83d\ude00"}' >"$out/json_prefix/seed-object"
printf '{\n  "a": [1, 2],\n  "b": {}\n}' >"$out/json_prefix/seed-indented"

# json_schema: a schema, a NUL byte, then a text the grammar reads.
printf '%s\000%s' '{"type":"object","properties":{"name":{"type":"string","maxLength":8},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3},"n":{"type":["integer","null"]}},"required":["name"]}' '{"name": "Tim", "tags": ["a"], "n": -3}' >"$out/json_schema/seed-object"
printf '%s\000%s' '{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"v":{"const":1},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"additionalProperties":{"type":"number"}}}}' '{"v":1,"kids":[{"v":1,"x":2.5e3}]}' >"$out/json_schema/seed-ref"
printf '%s\000%s' '{"anyOf":[{"type":"string","minLength":2},{"prefixItems":[{"type":"boolean"}],"items":false,"minItems":1}]}' '[true]' >"$out/json_schema/seed-union"

# gbnf: a GBNF grammar, a NUL byte, then a text the grammar reads.
printf '%s\000%s' 'root ::= object
object ::= "{" ws (pair ("," ws pair)*)? "}"
pair ::= string ":" ws value
value ::= object | string | [0-9]+ ("." [0-9]{1,3})? | "true" | "false"
string ::= "\"" [^"\\\x00-\x1F]* "\"" ws   # comment
ws ::= [ \t\n]{0,4}' '{"a": 12.5, "b": {"c": "Ã©"}}' >"$out/gbnf/seed-json"
printf '%s\000%s' 'root ::= (greet | "bye") "!"? .
greet ::= ("hi" | "hello"){1,2} [\u00e0-\U0001F642]+' 'hihelloð!x' >"$out/gbnf/seed-classes"

# option_text: the first byte picks the parser (0 --prefetch, 1 --tensor-type, 2 --type).
printf '\000l1:8k/3k,rows:1' >"$out/option_text/seed-prefetch"
printf '\000none' >"$out/option_text/seed-prefetch-none"
printf '\001layers\\.[0-3]\\.(wv|wo)=q6' >"$out/option_text/seed-tensor-type"
printf '\002q4m' >"$out/option_text/seed-type"

# tokenizer_config: the first byte picks the file (0 tokenizer_config.json,
# 1 generation_config.json, 2 config.json), the shipped ones as they are.
i=0
seed() {  # PREFIX_BYTE FILE
  [ -f "$2" ] || return 0
  { printf "\\$1"; cat "$2"; } >"$out/tokenizer_config/seed-$i"
  i=$((i + 1))
}
for f in "$shared"/models/*/tokenizer_config.json "$shared"/tokenizers/*/tokenizer_config.json; do seed 000 "$f"; done
for f in "$shared"/models/*/generation_config.json; do seed 001 "$f"; done
for f in "$shared"/models/*/config.json; do seed 002 "$f"; done

# gguf_reader: llama.cpp's vocab-only GGUF files as they are.
mkdir -p "$out/gguf_reader"
for f in "$shared"/tokenizers/llamacpp-vocab/*.gguf; do
  install -m 644 "$f" "$out/gguf_reader/seed-$(basename "$f")"
done

# The rest (cut-down tokenizer.json files, chat templates, config variants) in Python.
python3 fuzz/make_seeds.py "$shared" "$out"
for t in "$out"/*/; do
  echo "make_corpus: $(basename "$t"): $(find "$t" -name 'seed-*' | wc -l) seeds"
done
