"""Trains Uninformed Students on ONE Fashion-MNIST class and exports one safetensors file.

Format: docs/FORMATS.md, `uninformed_students`. The normal class's training images are split into
training images and the last --val held-out images (validation statistics e/v mean and std).

Example (from the repo root; about 8 minutes of 2 CPU cores with these defaults, see the
provenance key of the exported file for the measured time):
    nice -n 10 /usr/bin/python3 tools/export/train_students.py --normal-class 1 --out /tmp/us_class1.safetensors
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
