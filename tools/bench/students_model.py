#!/usr/bin/env python3
"""Whole-model throughput of Uninformed Students in PyTorch, the counterpart of `gpuanomaly bench --model`.

    # a model of the paper's size with random weights (3 channels, width 128, p = 17, 33, 65, M = 3)
    python3 tools/bench/students_model.py export --out /tmp/us_w128_c3.safetensors --in-channels 3 --width 128
    # time it: B images of H x W through every teacher and student, e, v and the scores
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 tools/bench/students_model.py time \
        --model /tmp/us_w128_c3.safetensors --size 256 --batch 1 --repeat 3 --threads 2

The timed call is UninformedStudents.score (tools/export/students.py), the reference the engine's
parity tests use: dense teacher + M students per scale, normalization, e, v, score, multi-scale mean
and max. Random weights time the same as trained ones (no data-dependent paths).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "export"))
import safetensors_io  # noqa: E402
from patchnet import SLOPE, PatchNetwork  # noqa: E402
from students import Scale, UninformedStudents  # noqa: E402


def export(a):
    torch.manual_seed(a.seed)
    scales = {}
    for p in a.scales:
        teacher = PatchNetwork(p, a.in_channels, a.width, a.dim).eval()
        students = [PatchNetwork(p, a.in_channels, a.width, a.dim).eval() for _ in range(a.students)]
        mu = torch.randn(a.dim) * 0.01
        sigma = torch.rand(a.dim) * 0.5 + 0.5
        scales[p] = Scale(teacher, mu, sigma, students, {"e_mean": 1.0, "e_std": 0.5, "v_mean": 0.1, "v_std": 0.05})
    cfg = {"scales": list(a.scales), "in_channels": a.in_channels, "width": a.width, "descriptor_dim": a.dim,
           "students": a.students, "leaky_relu_slope": SLOPE, "input_size": [a.size, a.size],
           "input_scale": "pixel / 255", "normal_class": None}
    model = UninformedStudents(scales, cfg)
    safetensors_io.save(a.out, model.tensors(), model.metadata({"random_weights": True, "seed": a.seed}))
    print(f"wrote {a.out}: random weights, {a.in_channels} channels, width {a.width}, scales {a.scales}, M = {a.students}")


def timing(a):
    torch.set_num_threads(a.threads)
    model = UninformedStudents.from_file(a.model)
    c = model.config["in_channels"]
    x = torch.rand(a.batch, c, a.size, a.size)
    with torch.no_grad():
        t = time.perf_counter()
        model.score(x, batch=a.batch)
        first = (time.perf_counter() - t) * 1e3
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            out = model.score(x, batch=a.batch)
            times.append((time.perf_counter() - t) * 1e3)
    med = statistics.median(times)
    print(f"torch {torch.__version__} cpu, {torch.get_num_threads()} threads: {a.batch} x {c}x{a.size}x{a.size}, "
          f"width {model.config['width']}, scales {model.config['scales']}: first {first:.1f} ms, median {med:.2f} ms "
          f"over {a.repeat} = {a.batch * 1000 / med:.2f} images/s (max score {float(out['image'].max()):.4f})")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    e.add_argument("--in-channels", type=int, default=3)
    e.add_argument("--width", type=int, default=128)
    e.add_argument("--dim", type=int, default=128)
    e.add_argument("--students", type=int, default=3)
    e.add_argument("--scales", type=int, nargs="+", default=[17, 33, 65])
    e.add_argument("--size", type=int, default=256, help="the input size recorded in the config")
    e.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("time")
    t.add_argument("--model", required=True)
    t.add_argument("--size", type=int, default=256)
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--repeat", type=int, default=5)
    t.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    export(a) if a.cmd == "export" else timing(a)


if __name__ == "__main__":
    main()
