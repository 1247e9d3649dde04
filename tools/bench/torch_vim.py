#!/usr/bin/env python3
"""PyTorch eager ViM scoring on the shapes of `gpuanomaly bench --filter vim_score` (KernelSuite.VimCases), with the
same timing rules (warm-up, synchronized, median of samples of back-to-back calls):

    python3 tools/bench/torch_vim.py --device cuda [--json out.json] [--small]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/bench/torch_vim.py --device cpu --threads 2

Per sample, as VimParams documents (METHODS.md section 2): l = W x + b, r = ||Rt (x - o)||, v = alpha r,
E = logsumexp(l), and the six outputs ViM probability, ViM score (v - E), MSP, MaxLogit, Energy, Residual. This is the
unfused sequence (GEMM, centring, GEMM, norm, softmax, reductions as separate kernels), which the fused kernel
replaces.
"""
import argparse
import json

import torch

from torch_ternary_attention import timed  # the same timing rules as the other device-side baselines

CASES = [("S256 N512 C10 K256", 256, 512, 10, 256),
         ("S256 N1024 C1000 K512", 256, 1024, 1000, 512),
         ("S4096 N1024 C1000 K512", 4096, 1024, 1000, 512)]


def vim_scores(x, w, b, o, rt, alpha):
    logits = torch.addmm(b, x, w.t())
    r = torch.linalg.vector_norm((x - o) @ rt.t(), dim=1)
    v = alpha * r
    energy = torch.logsumexp(logits, dim=1)
    prob = torch.exp(v - torch.logaddexp(energy, v))
    msp = torch.softmax(logits, dim=1).amax(dim=1)
    return torch.stack([prob, v - energy, msp, logits.amax(dim=1), energy, r], dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--small", action="store_true", help="one tiny case (KernelSuite's --small), for smoke tests")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    gen = torch.Generator().manual_seed(1)
    rows = []
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"ViM scoring, PyTorch {torch.__version__} eager fp32 on {name}")
    print(f"{'case':<26} {'median ms':>10} {'samples/s':>12} {'GFLOP/s':>8}")
    for label, s, n, c, k in ([("S5 N40 C7 K20", 5, 40, 7, 20)] if args.small else CASES):
        def rand(*shape, scale=1.0):
            return ((torch.rand(*shape, generator=gen) * 2 - 1) * scale).to(dev)
        x, w, b = rand(s, n), rand(c, n, scale=n ** -0.5), rand(c)
        o, rt = rand(n, scale=0.5), rand(k, n, scale=n ** -0.5)
        with torch.no_grad():
            ms = timed(lambda: vim_scores(x, w, b, o, rt, 0.5), sync)
        flops = 2.0 * s * (c + k) * n
        print(f"{label:<26} {ms:>10.4f} {s / ms * 1e3:>12.0f} {flops / ms / 1e6:>8.1f}")
        rows.append({"kernel": "torch.vim_score", "shape": label, "ms": ms, "samples_per_s": s / ms * 1e3})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
