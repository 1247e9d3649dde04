#!/usr/bin/env python3
"""Whole-model throughput of the window_vit classifier in PyTorch eager, the counterpart of
`gpuanomaly bench --model FILE` on a window_vit file (float weights).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/bench/window_vit_model.py \
        --model src/Models/Default/window_vit_fmnist.safetensors --batch 64 --repeat 20 --threads 2
    # on the device machine: --device cuda (synchronized around every run)

The timed call is WindowViT.forward (tools/export/window_vit.py: normalization, patch embedding, the blocks,
final norm, mean, head), the reference the engine's parity tests use, under torch.no_grad, on random images in
[0, 1]; the logits and pooled features are copied back to the host, as the engine's run returns them.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "export"))
import window_vit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t_load = time.perf_counter()
    model, _ = window_vit.WindowViT.from_file(a.model)
    model = model.to(a.device)
    cfg = model.config
    x = torch.rand(a.batch, cfg["in_channels"], *cfg["image_size"], device=a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    def run():
        logits, feature = model(x)
        return logits.cpu(), feature.cpu()

    with torch.no_grad():
        run()
        sync()
        first = (time.perf_counter() - t_load) * 1e3  # load included, as the engine's "first run"
        for _ in range(3):  # warm-up (allocator, kernels); the engine's bench times from its second run
            run()
        times = []
        for _ in range(a.repeat):
            sync()
            t = time.perf_counter()
            logits, _ = run()
            sync()
            times.append((time.perf_counter() - t) * 1e3)
    med = statistics.median(times)
    threads = f"{torch.get_num_threads()} threads" if a.device == "cpu" else torch.cuda.get_device_name()
    print(f"torch {torch.__version__} {a.device} ({threads}): {a.batch} x {cfg['in_channels']}x{cfg['image_size'][0]}x"
          f"{cfg['image_size'][1]}, window_vit C {cfg['embed_dim']}, {cfg['heads']} heads, {len(cfg['blocks'])} blocks: "
          f"first run {first:.1f} ms (load included), median {med:.2f} ms over {a.repeat} = {a.batch * 1000 / med:.1f} images/s "
          f"(logit sum {float(logits.sum()):.4f})")


if __name__ == "__main__":
    main()
