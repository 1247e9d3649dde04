"""Writes a pixel-level anomaly dataset from Fashion-MNIST test images of one class, in Anomalib's
Folder/MVTec layout with masks: synthetic defects with exact ground truth.

    /usr/bin/python3 tools/export/fmnist_defects.py --normal-class 1 --out /tmp/defects1

test/good: N normal test images, untouched. test/patch: normal images with a rectangle (6-12 px a
side) pasted from the same place of an image of another class; test/noise: normal images with a
rectangle of uniform noise. ground_truth/<defect>/<name>_mask.png marks the pasted pixels that
actually changed (|difference| > 8 grey levels), so a patch that happens to match leaves no mask.
"""
import argparse
import os

import numpy as np
from PIL import Image

import fashion_mnist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--normal-class", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=300, help="images per defect type and of test/good")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    x, y = fashion_mnist.load("test")
    normal = x[y == a.normal_class]
    others = x[y != a.normal_class]
    good = normal[: a.count]
    base = normal[a.count: 3 * a.count]
    os.makedirs(os.path.join(a.out, "test", "good"), exist_ok=True)
    for i, img in enumerate(good):
        Image.fromarray(img).save(os.path.join(a.out, "test", "good", f"{i:05d}.png"))
    for kind, imgs in (("patch", base[: a.count]), ("noise", base[a.count: 2 * a.count])):
        os.makedirs(os.path.join(a.out, "test", kind), exist_ok=True)
        os.makedirs(os.path.join(a.out, "ground_truth", kind), exist_ok=True)
        for i, img in enumerate(imgs):
            img = img.copy()
            h, w = rng.integers(6, 13, size=2)
            r, c = rng.integers(2, 28 - h - 1), rng.integers(2, 28 - w - 1)
            before = img.astype(np.int16)
            if kind == "patch":
                src = others[rng.integers(len(others))]
                img[r:r + h, c:c + w] = src[r:r + h, c:c + w]
            else:
                img[r:r + h, c:c + w] = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
            mask = (np.abs(img.astype(np.int16) - before) > 8).astype(np.uint8) * 255
            Image.fromarray(img).save(os.path.join(a.out, "test", kind, f"{i:05d}.png"))
            Image.fromarray(mask).save(os.path.join(a.out, "ground_truth", kind, f"{i:05d}_mask.png"))


if __name__ == "__main__":
    main()
