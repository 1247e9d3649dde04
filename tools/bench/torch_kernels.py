"""Times PyTorch on the shapes of `gpuanomaly bench` (src/Engine/Benchmarks/KernelSuite.cs), so that
both can run side by side on one machine. Conv includes its activation (ours is fused).

    python3 tools/bench/torch_kernels.py --device cuda [--tf32] [--json out.json]

CUDA timing: CUDA events around R back-to-back launches after warm-up, median of samples,
like our harness. --tf32 lets cuDNN use TF32 (PyTorch's default for convolutions); without it
the comparison is fp32 against fp32.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

CONV = [  # name, N, Cin, H, W, Cout, k, stride, pad, dil, groups, act
    ("resnet 3x3 64->64 56x56 b8", 8, 64, 56, 56, 64, 3, 1, 1, 1, 1, "relu"),
    ("stem 7x7/2 3->64 224x224 b8", 8, 3, 224, 224, 64, 7, 2, 3, 1, 1, "relu"),
    ("pointwise 1x1 256->128 28x28 b8", 8, 256, 28, 28, 128, 1, 1, 0, 1, 1, None),
    ("depthwise 3x3 128 56x56 b8", 8, 128, 56, 56, 128, 3, 1, 1, 1, 128, None),
    ("US p17 conv1 6x6 3->128 271x271", 1, 3, 271, 271, 128, 6, 1, 0, 1, 1, "leaky"),
    ("US p17 conv2 5x5 128->256 266x266", 1, 128, 266, 266, 256, 5, 1, 0, 1, 1, "leaky"),
    ("US p33 conv 5x5 d2 128->256 140x140", 1, 128, 140, 140, 256, 5, 1, 0, 2, 1, "leaky"),
]
POOL = [  # name, kind, N, C, H, W, k, stride, pad, dil
    ("max 2x2/1 128ch 128x128 b8", "max", 8, 128, 128, 128, 2, 1, 0, 1),
    ("max 2x2/1 d2 256ch 64x64 b8", "max", 8, 256, 64, 64, 2, 1, 0, 2),
    ("max 2x2/2 128ch 128x128 b8", "max", 8, 128, 128, 128, 2, 2, 0, 1),
    ("avg 3x3/1 p1 64ch 112x112 b8", "avg", 8, 64, 112, 112, 3, 1, 1, 1),
]

GENERIC = [  # kernel, name, input shapes, fn (KernelSuite.GenericOpCases)
    ("reduce_mean", "8x512x14x14 over HW", [(8, 512, 14, 14)], lambda x: x.mean((2, 3), keepdim=True)),
    ("reduce_logsum", "256x1000 over 1000", [(256, 1000)], lambda x: x.sum(1).log()),
    ("reduce_logsumexp", "256x1000 over 1000", [(256, 1000)], lambda x: torch.logsumexp(x, 1)),
    ("reduce_logsumexp", "16384x10 over 10", [(16384, 10)], lambda x: torch.logsumexp(x, 1)),
    ("onnx_mod", "8x128x56x56 by 128x1x1", [(8, 128, 56, 56), (128, 1, 1)], torch.remainder),
]


def timed(fn, device, min_sample_ms=2.0, samples=15, warmup=3):
    for _ in range(warmup):
        fn()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()

    def sample(r):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(r):
                fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)
        t = time.perf_counter()
        for _ in range(r):
            fn()
        return (time.perf_counter() - t) * 1e3

    once = sample(1)
    r = max(1, min(10000, int(min_sample_ms / max(once, 1e-4) + 0.999)))
    return statistics.median(sample(r) / r for _ in range(samples))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--filter", default="", help="only kernels whose name or shape contains this text (as gpuanomaly bench --filter)")
    a = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = a.device
    g = torch.Generator(device="cpu").manual_seed(0)
    rows = []
    with torch.no_grad():
        want = lambda kernel, name: a.filter.lower() in f"{kernel} {name}".lower()
        for name, n, ci, h, w, co, k, s, p, d, groups, act in CONV:
            if not want("conv2d", name):
                continue
            x = (torch.rand(n, ci, h, w, generator=g) * 2 - 1).to(dev)
            wt = (torch.rand(co, ci // groups, k, k, generator=g) * 2 - 1).to(dev)
            b = (torch.rand(co, generator=g) * 2 - 1).to(dev)
            act_fn = {"relu": F.relu, "leaky": lambda t: F.leaky_relu(t, 5e-3), None: lambda t: t}[act]
            fn = lambda: act_fn(F.conv2d(x, wt, b, s, p, d, groups))
            ms = timed(fn, dev)
            oh = (h + 2 * p - d * (k - 1) - 1) // s + 1
            ow = (w + 2 * p - d * (k - 1) - 1) // s + 1
            flops = 2.0 * n * co * oh * ow * (ci // groups) * k * k
            rows.append({"kernel": "torch.conv2d" + ("+tf32" if a.tf32 else ""), "shape": name, "ms": ms, "gflops": flops / ms / 1e6})
        for name, kind, n, c, h, w, k, s, p, d in POOL:
            if not want("pool2d", name):
                continue
            x = (torch.rand(n, c, h, w, generator=g) * 2 - 1).to(dev)
            if kind == "max":
                fn = lambda: F.max_pool2d(x, k, s, p, d)
            else:
                fn = lambda: F.avg_pool2d(x, k, s, p)
            ms = timed(fn, dev)
            oh = (h + 2 * p - d * (k - 1) - 1) // s + 1
            ow = (w + 2 * p - d * (k - 1) - 1) // s + 1
            rows.append({"kernel": "torch.pool2d", "shape": name, "ms": ms, "gbps": 4.0 * (n * c * h * w + n * c * oh * ow) / ms / 1e6})
        for kernel, name, shapes, op in GENERIC:
            if not want(kernel, name):
                continue
            xs = [(torch.rand(*sh, generator=g) * 2 - 1).to(dev) for sh in shapes]
            ms = timed(lambda: op(*xs), dev)
            out = op(*xs).numel()
            rows.append({"kernel": "torch." + kernel, "shape": name, "ms": ms,
                         "gbps": 4.0 * (sum(x.numel() for x in xs) + out) / ms / 1e6})
        nel = 1 << 26
        if want("elementwise", ""):
            xa = (torch.rand(nel, generator=g) * 2 - 1).to(dev)
            xb = (torch.rand(nel, generator=g) * 2 - 1).to(dev)
            y = torch.empty_like(xa)
            ms = timed(lambda: torch.nn.functional.leaky_relu(xa, 5e-3), dev)
            rows.append({"kernel": "torch.leaky_relu", "shape": f"{nel} floats", "ms": ms, "gbps": 8.0 * nel / ms / 1e6})
            ms = timed(lambda: torch.add(xa, xb, out=y), dev)
            rows.append({"kernel": "torch.add", "shape": f"{nel} floats", "ms": ms, "gbps": 12.0 * nel / ms / 1e6})
    for r in rows:
        extra = f"{r['gflops']:9.1f} GFLOP/s" if "gflops" in r else f"{r['gbps']:9.1f} GB/s"
        print(f"{r['kernel']:22s} {r['shape']:38s} {r['ms']:10.4f} ms {extra}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
