#!/usr/bin/env python3
"""Times torch.nn.functional.linear in float32 (CPU) on the shapes of bench/GpuAnomaly.Bench/TernaryLinearBench.cs:
W [4096, 4096], x [M, 4096] for M = 1 (GEMV), 8, 32; the reference point for TernaryLinearCpu.

Run with OpenBLAS tuning variables unset and the same thread count as the C# side:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/bench/ternary_cpu_torch.py [--threads 2] [--reps 30]
Output lines match `dotnet bench/GpuAnomaly.Bench/bin/Release/net10.0/GpuAnomaly.Bench.dll ternary-cpu`.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

N = K = 4096


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"linear cpu (torch {torch.__version__}), N=K={N}, {torch.get_num_threads()} threads, median of {args.reps}")
    print(f"{'case':<16} {'median ms':>10} {'min ms':>9} {'weight GB/s':>12}")
    torch.manual_seed(1)
    w = torch.rand(N, K) * 2 - 1
    b = torch.rand(N) * 2 - 1
    with torch.no_grad():
        for m in (1, 8, 32):
            x = torch.rand(m, K) * 2 - 1
            # Warm up for half a second, as the C# quick mode does.
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 0.5:
                F.linear(x, w, b)
            times = []
            for _ in range(args.reps):
                t = time.perf_counter()
                F.linear(x, w, b)
                times.append((time.perf_counter() - t) * 1e3)
            ms = statistics.median(times)
            print(f"{f'M={m} torch fp32':<16} {ms:10.3f} {min(times):9.3f} {N * K * 4 / ms / 1e6:12.2f}")


if __name__ == "__main__":
    main()
