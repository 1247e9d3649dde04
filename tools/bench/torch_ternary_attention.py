#!/usr/bin/env python3
"""PyTorch baselines for the ternary and attention rows of `gpuanomaly bench` (same shapes, same timing rules:
warm-up, synchronized, median of samples), to run beside it on the device machine:

    python3 tools/bench/torch_ternary_attention.py --device cuda [--small]

- linear fp16 / fp32 GEMV and GEMM (torch.nn.functional.linear), weights cycled through copies > 64 MB so the L2
  cache does not hold them (as KernelSuite.TernaryCases does for our kernels);
- windowed attention in eager fp32, written as Swin/timm do it: roll (shifted case), window partition, q k^T * scale +
  relative bias (+ mask), softmax, @ v, window reverse, roll back; SparseViT groups by reshape/permute.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

TERNARY = [("gemv 8192x8192", 1, 8192, 8192), ("gemv 4096x11008", 1, 4096, 11008), ("gemv 11008x4096", 1, 11008, 4096),
           ("gemm b8 4096x4096", 8, 4096, 4096), ("gemm b32 4096x4096", 32, 4096, 4096), ("gemm b128 4096x4096", 128, 4096, 4096)]
ATTN = [("window ws7 d32 h3 56x56 b32", 32, 56, 56, 3, 32, "window", 7, 0),
        ("shifted ws7 d32 h3 56x56 b32", 32, 56, 56, 3, 32, "window", 7, 3),
        ("sparse S2 d64 h4 28x28 b32", 32, 28, 28, 4, 64, "sparse", 2, 0)]


def timed(fn, sync, samples=15, min_ms=2.0):
    for _ in range(3):
        fn()
    sync()
    t = time.perf_counter(); fn(); sync()
    once = max((time.perf_counter() - t) * 1e3, 1e-3)
    launches = max(1, int(min_ms / once))
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(launches):
            fn()
        sync()
        out.append((time.perf_counter() - t) * 1e3 / launches)
    return statistics.median(out)


def window_attention(qkv, b, h, w, heads, d, kind, unit, shift, table, index, mask):
    c = heads * d
    x = qkv.view(b, h, w, 3 * c)
    if kind == "window":
        if shift:
            x = torch.roll(x, (-shift, -shift), (1, 2))
        x = x.view(b, h // unit, unit, w // unit, unit, 3 * c).permute(0, 1, 3, 2, 4, 5).reshape(-1, unit * unit, 3, heads, d)
    else:
        x = x.view(b, h // unit, unit, w // unit, unit, 3 * c).permute(0, 2, 4, 1, 3, 5).reshape(-1, (h // unit) * (w // unit), 3, heads, d)
    q, k, v = x.permute(2, 0, 3, 1, 4).unbind(0)
    a = (q * d ** -0.5) @ k.transpose(-2, -1)
    if kind == "window":
        a = a + table[index].view(unit * unit, unit * unit, heads).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            a = a.view(-1, nw, heads, unit * unit, unit * unit) + mask.unsqueeze(1).unsqueeze(0)
            a = a.view(-1, heads, unit * unit, unit * unit)
    y = (a.softmax(-1) @ v).transpose(1, 2).reshape(b, -1, c)
    if kind == "window":
        y = y.view(b, h // unit, w // unit, unit, unit, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if shift:
            y = torch.roll(y, (shift, shift), (1, 2))
    else:
        y = y.view(b, unit, unit, h // unit, w // unit, c).permute(0, 3, 1, 4, 2, 5).reshape(b, h, w, c)
    return y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true")
    a = ap.parse_args()
    dev = a.device
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'}")
    with torch.no_grad():
        for name, m, n, k in (TERNARY[:1] if a.small else TERNARY):
            if a.small:
                n, k = 64, 96
            for dtype in ([torch.float16, torch.float32] if dev == "cuda" else [torch.float32]):
                size = n * k * (2 if dtype == torch.float16 else 4)
                copies = max(2, (64 << 20) // size + 1)
                ws = [torch.randn(n, k, device=dev, dtype=dtype) for _ in range(copies)]
                x = torch.randn(m, k, device=dev, dtype=dtype)
                bias = torch.randn(n, device=dev, dtype=dtype)
                it = [0]

                def run():
                    F.linear(x, ws[it[0] % copies], bias)
                    it[0] += 1
                ms = timed(run, sync)
                print(f"linear {str(dtype).split('.')[-1]:8s} {name:22s} {ms:9.4f} ms  {size / ms / 1e6:8.1f} GB/s of weights  ({copies} copies)")
                del ws
        for name, b, h, w, heads, d, kind, unit, shift in (ATTN if not a.small else [("window small", 2, 14, 14, 2, 8, "window", 7, 3)]):
            c = heads * d
            qkv = torch.randn(b, h * w, 3 * c, device=dev)
            table = torch.randn((2 * unit - 1) ** 2, heads, device=dev)
            coords = torch.stack(torch.meshgrid(torch.arange(unit), torch.arange(unit), indexing="ij")).flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + unit - 1
            index = (rel[..., 0] * (2 * unit - 1) + rel[..., 1]).flatten().to(dev)
            mask = None
            if kind == "window" and shift:
                img = torch.zeros(h, w)
                cnt = 0
                for hs in (slice(0, -unit), slice(-unit, -shift), slice(-shift, None)):
                    for vs in (slice(0, -unit), slice(-unit, -shift), slice(-shift, None)):
                        img[hs, vs] = cnt
                        cnt += 1
                mw = img.view(h // unit, unit, w // unit, unit).permute(0, 2, 1, 3).reshape(-1, unit * unit)
                mask = ((mw.unsqueeze(1) - mw.unsqueeze(2)) != 0).float().mul(-100.0).to(dev)
            ms = timed(lambda: window_attention(qkv, b, h, w, heads, d, kind, unit, shift, table, index, mask), sync)
            groups = b * (h // unit) * (w // unit) if kind == "window" else b * unit * unit
            g = unit * unit if kind == "window" else (h // unit) * (w // unit)
            flops = 4.0 * groups * heads * g * g * d
            print(f"attention eager fp32 {name:30s} {ms:9.4f} ms  {flops / ms / 1e6:8.1f} GFLOP/s")


if __name__ == "__main__":
    main()
