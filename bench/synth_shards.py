"""The sharded bf16 safetensors writer and tokenizer copy of the bench's synthetic
checkpoints (synth_gemma3.py, synth_moe.py), over ../shared/tools/synth_hf.py's pieces."""
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tools"))
from synth_hf import encode, matrix, write_shard  # noqa: E402,F401  (matrix: for the callers)


def write_checkpoint(out, named_tensors, shard_mb):
    """(name, array) pairs as bf16 safetensors shards of about shard_mb MB, with the index
    file when there are several. Returns (bytes of weights, shards)."""
    os.makedirs(out, exist_ok=True)
    shards, cur, cur_bytes, weight_map = [], [], 0, {}
    for name, t in named_tensors:
        data, dt = (t.tobytes(), "U8") if t.dtype == np.uint8 else encode(t, "bf16")  # U8: packed MXFP4
        if cur and cur_bytes + len(data) > shard_mb * 1_000_000:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, data, dt, t.shape))
        cur_bytes += len(data)
    shards.append(cur)
    n, total = len(shards), 0
    for i, items in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{n:05d}.safetensors" if n > 1 else "model.safetensors"
        write_shard(os.path.join(out, fn), items)
        for name, data, _, _ in items:
            weight_map[name] = fn
            total += len(data)
        print(f"wrote {fn}", file=sys.stderr)
    if n > 1:
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    return total, n


def finish(out, config, tokenizer_dir):
    """config.json and the tokenizer files next to the shards."""
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for fn in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json"):
        src = os.path.join(tokenizer_dir, fn)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(out, fn))
