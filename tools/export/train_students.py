"""Trains Uninformed Students on ONE Fashion-MNIST class and exports one safetensors file.

Format: docs/FORMATS.md, `uninformed_students`. The normal class's training images are split into
training images and the last --val held-out images (validation statistics e/v mean and std).

Example (from the repo root):
    nice -n 10 /usr/bin/python3 tools/export/train_students.py --normal-class 1 --out /tmp/us_class1.safetensors
        --width 16 --teacher-steps 100 --student-steps 150
Measured on 2 shared CPU cores (torch 1.13, 2 threads, load average 5-7 from other work): 624 s for all
three scales (p=17 281 s while another job shared the cores, p=33 144 s, p=65 200 s); image AUROC of
that model (eval_students.py --limit 500: 500 normal + 500 other test images): 0.880 (p=17 0.869,
p=33 0.903, p=65 0.799). Class 0 (T-shirt/top), same settings: 498 s, AUROC 0.820. The defaults (width 32, 200 + 200 steps) should take
roughly 2-3x longer (estimated from per-step timings, not measured). The exported file's `provenance` key records steps, seed and seconds.
"""
import argparse
import json

import numpy as np
import torch

import fashion_mnist
import safetensors_io
import students


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--normal-class", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scales", type=int, nargs="+", default=list(students.DEFAULT_SCALES))
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--students", type=int, default=3)
    ap.add_argument("--teacher-steps", type=int, default=200)
    ap.add_argument("--student-steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val", type=int, default=500, help="held-out normal training images for the statistics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    images, labels = fashion_mnist.load("train")
    x = students.to_input(images[labels == args.normal_class])
    x_train, x_val = x[:-args.val], x[-args.val:]
    print(f"class {args.normal_class} ({fashion_mnist.CLASSES[args.normal_class]}): "
          f"{len(x_train)} training, {len(x_val)} validation images", flush=True)
    model, prov = students.train(x_train, x_val, args.scales, args.width, args.dim, args.students,
                                 args.teacher_steps, args.student_steps, args.batch, args.lr, args.seed,
                                 normal_class=args.normal_class, log=lambda s: print(s, flush=True))
    safetensors_io.save(args.out, model.tensors(), model.metadata(prov))
    print(json.dumps(prov))


if __name__ == "__main__":
    main()
