#!/usr/bin/env python3
"""Times torch.nn.functional.conv2d (CPU, oneDNN/mkldnn) on the shapes of bench/GpuAnomaly.Bench/Conv2dBench.cs.

Run with OpenBLAS tuning variables unset and the same thread count as the C# side:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/bench/conv_cpu_vs_torch.py [--threads 2] [--reps 30]
Output lines match `dotnet run -c Release --project bench/GpuAnomaly.Bench -- conv-cpu`.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

# name, (n, cin, h, w), cout, k, padding, groups, activation; the same list as Conv2dBench.Shapes.
SHAPES = [
    ("1x64x56x56-64-k3p1", (1, 64, 56, 56), 64, 3, 1, 1, None),
    ("1x128x32x32-256-k5p2", (1, 128, 32, 32), 256, 5, 2, 1, None),
    ("8x3x64x64-128-k6", (8, 3, 64, 64), 128, 6, 0, 1, None),
    ("1x3x70x70-128-k6", (1, 3, 70, 70), 128, 6, 0, 1, "leaky_relu"),
    ("1x256x28x28-128-k1", (1, 256, 28, 28), 128, 1, 0, 1, None),
    ("1x128x56x56-dw-k3p1", (1, 128, 56, 56), 128, 3, 1, 128, None),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"conv2d cpu (torch {torch.__version__}, mkldnn={torch.backends.mkldnn.is_available()}), "
          f"{torch.get_num_threads()} threads, median of {args.reps}")
    torch.manual_seed(1)
    with torch.no_grad():
        for name, xs, cout, k, pad, groups, act in SHAPES:
            x = torch.rand(xs) * 2 - 1
            w = torch.rand(cout, xs[1] // groups, k, k) * 2 - 1
            b = torch.rand(cout) * 2 - 1

            def run():
                y = F.conv2d(x, w, b, stride=1, padding=pad, groups=groups)
                if act == "leaky_relu":
                    y = F.leaky_relu(y, 0.005)
                return y

            y = run()
            for _ in range(5):
                run()
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                run()
                times.append((time.perf_counter() - t0) * 1e3)
            ms = statistics.median(times)
            oh, ow = y.shape[2], y.shape[3]
            flops = 2.0 * xs[0] * cout * oh * ow * (xs[1] // groups) * k * k
            mn = min(times)
            print(f"{name:<24} {ms:9.3f} ms {flops / ms / 1e6:8.1f} GFLOP/s   (min {mn:.3f} ms {flops / mn / 1e6:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
