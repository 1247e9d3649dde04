#!/usr/bin/env python3
"""Instruction mix of a kernel's loops in the SASS ptxas makes from ILGPU's PTX: no GPU needed.

A memory-bound kernel such as the ternary GEMV is only memory-bound if it issues few enough instructions per byte
it streams; this counts them, loop by loop (a loop is the span from a backward branch's target to the branch; an
inner loop is counted inside its outer one too).

    GPUANOMALY_PTXAS=$(bash .ci/fetch-ptxas) GPUANOMALY_PTX_DUMP=/tmp/ptx \\
        dotnet test tests/GpuAnomaly.Tests -c Release --filter FullyQualifiedName~PtxasTests
    python3 tools/ptx/sass_loops.py /tmp/ptx/GpuAnomaly.Kernels.Ternary.TernaryGemvKernel.A32.ptx [--arch sm_90]

ptxas and nvdisasm come from .ci/fetch-ptxas (CUDA 11.8). The numbers are static counts, not timings.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ptx", nargs="+")
    ap.add_argument("--arch", default="sm_90")
    args = ap.parse_args()
    ptxas = os.environ.get("GPUANOMALY_PTXAS") or subprocess.run(
        ["bash", os.path.join(os.path.dirname(__file__), "..", "..", ".ci", "fetch-ptxas")],
        check=True, capture_output=True, text=True).stdout.strip()
    nvdisasm = os.path.join(os.path.dirname(ptxas), "nvdisasm")
    for ptx in args.ptx:
        with tempfile.TemporaryDirectory() as tmp:
            cubin = os.path.join(tmp, "k.cubin")
            subprocess.run([ptxas, f"-arch={args.arch}", "-o", cubin, ptx], check=True)
            sass = subprocess.run([nvdisasm, "-c", cubin], check=True, capture_output=True, text=True).stdout
        code, labels, pending = [], {}, []
        for line in sass.splitlines():
            label = re.match(r"^(\.L_x_\d+):", line)
            if label:
                pending.append(label.group(1))
            m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
            if m:
                for name in pending:
                    labels[name] = len(code)
                pending = []
                code.append(m.group(2))
        print(f"{os.path.basename(ptx)} ({args.arch}): {len(code)} instructions")
        for i, ins in enumerate(code):
            m = re.search(r"BRA\s+`?\(?(\.L_x_\d+)", ins)
            if not m or labels.get(m.group(1), i) >= i:
                continue
            body = code[labels[m.group(1)]:i + 1]
            mix = collections.Counter(op.split()[1] if op.startswith("@") else op.split()[0] for op in body)
            top = ", ".join(f"{k} {v}" for k, v in mix.most_common(10))
            print(f"  loop at instruction {labels[m.group(1)]}..{i}: {len(body)} instructions: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
