#!/usr/bin/python3
"""Disassembles a built x86-64 library or binary and rejects instructions that the
CPU check of the code's Highway target does not guarantee.

Highway compiles each kernel once per target in a namespace N_<TARGET> and dispatches
at run time on a CPU check; an instruction outside that check is SIGILL on some CPUs
that pass it (Highway 1.0.3's AVX3_DL target string enables AVX-VNNI, the VEX form of
vpdpbusd, which Zen 4 and Ice Lake lack, while the check only asks for AVX-512 VNNI).
Code outside any target namespace must run on baseline x86-64: no VEX or EVEX at all.
The one exception is the int8 kernels' vpdpbusd copy (simd/int8_vnni.h): functions that
name VnniDot may use vpdpbusd, VEX-encoded on AVX2 (AVX-VNNI) and EVEX-encoded on AVX3
(AVX-512 VNNI), because they run only where CPUID reports that form.

Usage: check_target_isa.py FILE...   (exit 1 and one line per offending function)
"""
import re
import subprocess
import sys

LEGACY_PREFIXES = {0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x3E, 0x26, 0x64, 0x65, 0x36}

VNNI = re.compile(r"^vpdp(bus|ws)ds?$")
# Extensions beyond AVX3 (Skylake-X: F, CD, VL, DQ, BW) that AVX3_DL's check covers.
AVX3_DL_EXTRAS = re.compile(
    r"^(vpdp(bus|ws)ds?"                           # AVX512_VNNI
    r"|vpermb|vperm[it]2b|vpmultishiftqb"          # AVX512_VBMI
    r"|vp(compress|expand)[bw]|vpsh[lr]dv?[wdq]"  # AVX512_VBMI2
    r"|vpopcnt[bwdq]|vpshufbitqmb"                 # BITALG, VPOPCNTDQ
    r"|vaes(enc|dec)(last)?|vpclmulqdq)$")         # VAES, VPCLMULQDQ on ymm/zmm
# In no target's check: AVX512_BF16, AVX512_FP16, IFMA, GFNI, AVX-VNNI-INT8, AVX-NE-CONVERT.
NEVER = re.compile(
    r"^(vcvtne2?ps2bf16|vdpbf16ps|vpmadd52[lh]uq|v?gf2p8\w+|vpdpb(ss|su|uu)ds?|vpdpw(su|us|uu)ds?"
    r"|vbcstne\w+|vcvtne[eo]\w+"
    r"|v\w*(ph|sh)(x)?|vcvt\w*2ph\w*|vcvtph2\w*(w|dq|qq|udq|uqq|psx|pd|sd|ss)\w*)$")
F16C = {"vcvtph2ps", "vcvtps2ph"}  # ends in "ph"/"ps" but is F16C / AVX512F


def encoding(raw_bytes):
    """'vex', 'evex' or 'legacy' from the instruction's leading bytes."""
    for b in raw_bytes:
        if b in LEGACY_PREFIXES:
            continue
        if b in (0xC4, 0xC5):
            return "vex"
        if b == 0x62:
            return "evex"
        return "legacy"
    return "legacy"


def target_of(function):
    m = re.search(r"::N_(AVX3_DL|AVX3|AVX2|SSE4|SSSE3|EMU128|SCALAR)::", function)
    return m.group(1) if m else "BASELINE"


def vnni_copy(function, target, mnemonic, enc):
    """vpdpbusd in the kernel copy that the dispatcher runs only where CPUID reports it."""
    form = {"AVX2": "vex", "AVX3": "evex"}.get(target)
    return mnemonic == "vpdpbusd" and enc == form and "VnniDot" in function


def violation(function, target, mnemonic, enc, text):
    if vnni_copy(function, target, mnemonic, enc):
        return None
    if mnemonic in F16C:
        return None if target in ("AVX2", "AVX3", "AVX3_DL") else "F16C outside AVX2+"
    if NEVER.match(mnemonic):
        return "in no target's CPU check"
    if target in ("BASELINE", "EMU128", "SCALAR", "SSE4", "SSSE3"):
        return f"{enc.upper()}-encoded" if enc != "legacy" else None
    if target == "AVX2":
        if enc == "evex" or "%zmm" in text or re.search(r"%k[0-7]", text):
            return "AVX-512 (EVEX)"
        if VNNI.match(mnemonic):
            return "AVX-VNNI"
        return None
    if target == "AVX3":
        return "beyond AVX3's check" if AVX3_DL_EXTRAS.match(mnemonic) else None
    if target == "AVX3_DL":
        if enc == "vex" and VNNI.match(mnemonic):
            return "VEX-encoded VNNI (AVX-VNNI), not in AVX3_DL's check"
        return None
    return None


def check(path):
    out = subprocess.run(["objdump", "-d", "-C", "-w", path], check=True, capture_output=True,
                         text=True).stdout
    function, bad, checked = "?", {}, 0
    for line in out.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            function = head.group(1)
            continue
        parts = line.split("\t")
        if len(parts) < 3 or not re.match(r"^\s*[0-9a-f]+:$", parts[0]):
            continue
        raw = [int(x, 16) for x in parts[1].split()]
        text = parts[2].strip()
        fields = text.split()
        while fields and fields[0] in ("{vex}", "{evex}", "rex", "rex.W", "data16", "lock", "notrack",
                                       "bnd", "rep", "repz", "repnz", "cs", "ds", "ss", "es", "fs", "gs"):
            fields = fields[1:]
        if not fields:
            continue
        mnemonic = fields[0]
        checked += 1
        target = target_of(function)
        why = violation(function, target, mnemonic, encoding(raw), text)
        if why:
            bad.setdefault((function, why), []).append(text)
    return checked, bad


def main():
    failed = False
    for path in sys.argv[1:]:
        checked, bad = check(path)
        if checked == 0:
            print(f"{path}: no instructions disassembled")
            failed = True
        for (function, why), texts in sorted(bad.items()):
            print(f"{path}: {target_of(function)} code uses {why}: {texts[0]} "
                  f"({len(texts)}x) in {function[:160]}")
            failed = True
        print(f"{path}: {checked} instructions checked, {len(bad)} offending functions")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
