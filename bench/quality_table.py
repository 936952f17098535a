#!/usr/bin/env python3
"""Markdown quality table for bench/compare_quality.sh (one model per call).

  quality_table.py RESULTS.tsv TITLE HEADER_LINE [NOTE...]

RESULTS.tsv has one row per measured file, tab separated:
  engine (qrun | llama)  type  status (ok | refused)  model file  perplexity log  extra
where extra is, for qrun, the `qconvert --info` output saved to a file and, for llama.cpp,
llama-quantize's log (or '-'). Each tool's F16 row is its own KLD base. Pairs each qrun type
with the llama.cpp type nearest in bits per weight (PAIRS below) and prints the table.

Bits per weight are counted the same way for both: the bytes of every 2-D weight matrix except
the token embedding (qrun keeps it f16, llama.cpp quantizes it; it is read one row per token),
over their element count. 'file bpw' is the whole file (metadata, tokenizer, padding and the
embedding included) over all weights. Needs NumPy for llama.cpp's gguf-py reader.
"""
import math
import os
import re
import sys

PAIRS = [("q8", "Q8_0"), ("q6", "Q6_K"), ("q5m", "Q5_K_M"), ("q5", "Q5_0"), ("q4m", "Q4_K_M"),
         ("q4n", "IQ4_NL"), ("q4", "Q4_0"), ("q3m", "Q3_K_M"), ("q3", "Q3_K_M"),
         ("q2m", "Q2_K"), ("q2k", "Q2_K")]
HERE = os.path.dirname(os.path.abspath(__file__))
GGUF_PY = os.environ.get("GGUF_PY", os.path.join(HERE, "..", "..", "shared", "tools", "llamacpp", "convert"))


def fail(msg):
    print(f"quality_table: {msg}", file=sys.stderr)
    sys.exit(1)


def grab(pattern, text, what, path, groups=2):
    m = re.search(pattern, text, re.M)
    if not m:
        fail(f"no {what} in {path}")
    return tuple(float(m.group(i + 1)) for i in range(groups))


def qrun_metrics(log, base):
    text = open(log, errors="replace").read()
    ppl = grab(r"^perplexity: ([\d.eE+-]+) \+/- ([\d.eE+-]+)", text, "perplexity", log)
    if base:
        return {"ppl": ppl}
    kld = grab(r"^mean KLD: ([\d.eE+-]+) \+/- ([\d.eE+-]+)", text, "mean KLD", log)
    top1 = grab(r"^same top-1: ([\d.eE+-]+)%", text, "same top-1", log, 1)
    return {"ppl": ppl, "kld": kld, "top1": top1[0]}


def llama_metrics(log, base):
    text = open(log, errors="replace").read()
    if base:
        return {"ppl": grab(r"Final estimate: PPL = ([\d.eE+-]+) \+/- ([\d.eE+-]+)", text, "final PPL", log)}
    num = r"([\d.eE+-]+)\s*±\s*([\d.eE+-]+)"
    return {"ppl": grab(r"^Mean PPL\(Q\)\s*:\s*" + num, text, "Mean PPL(Q)", log),
            "kld": grab(r"^Mean\s+KLD:\s*" + num, text, "Mean KLD", log),
            "top1": grab(r"^Same top p:\s*" + num, text, "Same top p", log)[0]}


def qrun_bpw(model, info):
    """(matrix bpw, file bpw) from `qconvert --info` output."""
    row = re.compile(r"^\s+(\S+)\s+(\S+)\s+\[\s*(\d+),\s*(\d+)\]\s+offset\s+\d+\s+(\d+) bytes$")
    mat_bytes = mat_n = all_n = 0
    for line in open(info):
        m = row.match(line)
        if not m:
            continue
        name, n = m.group(1), int(m.group(3)) * int(m.group(4))
        all_n += n
        if int(m.group(3)) > 1 and int(m.group(4)) > 1 and name != "tok_embeddings":
            mat_bytes += int(m.group(5))
            mat_n += n
    if not mat_n:
        fail(f"no tensor rows in {info}")
    return 8 * mat_bytes / mat_n, 8 * os.path.getsize(model) / all_n, None


def gguf_bpw(path):
    """(matrix bpw, file bpw, token_embd type) of a GGUF file, with llama.cpp's own gguf-py."""
    sys.path.insert(0, GGUF_PY)
    os.environ.setdefault("NO_LOCAL_GGUF", "1")
    try:
        from gguf import GGUFReader  # noqa: E402 (llama.cpp's reader, shipped with its converter)
    except ImportError as e:
        fail(f"cannot import llama.cpp's gguf-py from {GGUF_PY}: {e}")
    mat_bytes = mat_n = all_n = 0
    emb, tied = None, True
    for t in GGUFReader(path).tensors:
        tied = tied and t.name != "output.weight"
        shape = [int(d) for d in t.shape]
        all_n += int(t.n_elements)
        if t.name == "token_embd.weight":
            emb = t.tensor_type.name
        elif len(shape) == 2 and min(shape) > 1:
            mat_bytes += int(t.n_bytes)
            mat_n += int(t.n_elements)
    return 8 * mat_bytes / mat_n, 8 * os.path.getsize(path) / all_n, (emb, tied)


def fallback_note(qlog):
    """'N of M tensors' when llama-quantize fell back to other types (rows not a multiple of 256)."""
    if qlog == "-" or not os.path.exists(qlog):
        return None
    m = re.search(r"WARNING: (\d+) of (\d+) tensor\(s\) required fallback quantization", open(qlog, errors="replace").read())
    return f"{m.group(1)} of {m.group(2)}" if m else None


def refused_reason(qlog):
    if qlog == "-" or not os.path.exists(qlog):
        return "refused"
    # the fatal line (the others name a fallback type): "... are not divisible by 32, required for q4_0llama_model_quantize: failed"
    m = re.search(r"tensor cols (\d+) x \d+ are not divisible by (\d+), required for \w+?llama_model_quantize: failed",
                  open(qlog, errors="replace").read())
    return f"refused (rows of {m.group(1)} not a multiple of {m.group(2)})" if m else "refused"


def pm(value, err, digits=4):
    """value ± err with `digits` significant digits in the value and the error at the same decimals."""
    dec = max(0, digits - 1 - math.floor(math.log10(abs(value)))) if value else digits
    return f"{value:.{dec}f} ± {err:.{dec}f}"


def main():
    if len(sys.argv) < 4:
        fail("usage: quality_table.py RESULTS.tsv TITLE HEADER_LINE [NOTE...]")
    results, title, header, notes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    r = {}
    for line in open(results):
        engine, typ, status, model, log, extra = line.rstrip("\n").split("\t")
        base = typ.lower() == "f16"
        e = {"status": status}
        if status == "ok":
            e.update(qrun_metrics(log, base) if engine == "qrun" else llama_metrics(log, base))
            bpw, fbpw, emb = qrun_bpw(model, extra) if engine == "qrun" else gguf_bpw(model)
            e.update(bpw=bpw, fbpw=fbpw, emb=emb)
            if engine == "llama":
                e["fallback"] = fallback_note(extra)
        else:
            e["reason"] = refused_reason(extra)
        r[(engine, typ)] = e

    def cells(engine, typ):
        if typ is None:
            return ["", "", "", "", "", ""]
        e = r.get((engine, typ))
        name = typ
        if e is None:
            return [name, "", "", "not run", "", ""]
        if e["status"] != "ok":
            return [name, "", "", e["reason"], "", ""]
        if e.get("fallback"):
            name += "†"
        base = typ.lower() == "f16"
        kld = "base" if base else pm(*e["kld"], 3)
        top1 = "" if base else f"{e['top1']:.2f}"
        return [name, f"{e['bpw']:.3f}", f"{e['fbpw']:.3f}", kld, top1, pm(*e["ppl"], 5)]

    rows = [("f16", "F16")]
    qrun_types = [t for (eng, t) in r if eng == "qrun" and t != "f16"]
    llama_types = [t for (eng, t) in r if eng == "llama" and t != "F16"]
    paired = set()
    for q in qrun_types:
        peer = dict(PAIRS).get(q)
        rows.append((q, peer))
        paired.add(peer)
    rows += [(None, t) for t in llama_types if t not in paired]

    out = [f"### {title}", "", header, "",
           "| qrun type | bpw | file bpw | KLD | same top-1 % | PPL | llama.cpp type | bpw | file bpw | KLD | same top-1 % | PPL | KLD ratio qrun/llama.cpp |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fallbacks = []
    for q, l in rows:
        ratio = ""
        qe, le = r.get(("qrun", q)), r.get(("llama", l))
        if q != "f16" and qe and le and qe["status"] == le["status"] == "ok" and le["kld"][0] > 0:
            ratio = f"{qe['kld'][0] / le['kld'][0]:.2f}"
        if le and le.get("fallback") and l not in [f[0] for f in fallbacks]:
            fallbacks.append((l, le["fallback"], le["emb"]))
        out.append("| " + " | ".join(cells("qrun", q) + cells("llama", l) + [ratio]) + " |")
    out.append("")
    qb, lb = r.get(("qrun", "f16")), r.get(("llama", "F16"))
    if qb and lb and qb["status"] == lb["status"] == "ok":
        out.append(f"F16 bases: qrun's perplexity is {100 * (qb['ppl'][0] / lb['ppl'][0] - 1):+.2f}% from llama.cpp's.")
    out.append("bpw: bytes of the 2-D weight matrices except the token embedding, over their weights (counted the same "
               "way for both files); file bpw: file size over all weights. KLD and same top-1 are against each tool's own "
               "F16 run on the same text; KLD ± is the standard error of the mean.")
    if fallbacks:
        out.append("† llama-quantize fell back to other types for some tensors (rows not a multiple of 256): " +
                   "; ".join(f"{t}: {n} tensors" for t, n, _ in fallbacks) + ". Its bpw is what it stored.")
    embs = {t: r[("llama", t)]["emb"] for t in llama_types if r[("llama", t)]["status"] == "ok"}
    if embs:
        tied = all(e[1] for e in embs.values())
        out.append("llama.cpp token_embd types: " + ", ".join(f"{t} {e[0]}" for t, e in embs.items()) + "; qrun keeps it f16" +
                   (". Tied embeddings: it is also the output matrix, so qrun's logits come from f16 weights there and "
                    "llama.cpp's from the type above, outside both bpw columns." if tied else "."))
    out += notes
    print("\n".join(out))


if __name__ == "__main__":
    main()
