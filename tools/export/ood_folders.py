"""Writes the out-of-distribution evaluation data of issue 6 as PNG folders, for `gpuanomaly fit-ood` and `gpuanomaly ood`.

    /usr/bin/python3 tools/export/ood_folders.py --out /tmp/ood [--classes 0 1 2 3 4 5 7 8] [--train-per-class 1000]

Layout (one folder per role; class subfolders are named by the Fashion-MNIST class id):
  train/<id>/        in-distribution TRAINING images (what fit-ood fits on), --train-per-class of each ID class
  id/<id>/           in-distribution TEST images (the 1000 test images of each ID class)
  near/<id>/         the held-out classes' test images (near OOD: same domain, unseen classes)
  digits/            scikit-learn's bundled 8x8 digits (1797), upscaled to 28x28 (bilinear) and scaled to 0..255 (far OOD)
  noise/             1000 images: half uniform noise, half Gaussian noise (mean 72.9, sd 90) clipped to 0..255 (far OOD)
"""
import argparse
import os

import numpy as np
from PIL import Image

import fashion_mnist


def save(images, folder):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(np.asarray(img, np.uint8)).save(os.path.join(folder, f"{i:05d}.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--classes", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5, 7, 8])
    ap.add_argument("--train-per-class", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    xtr, ytr = fashion_mnist.load("train")
    xte, yte = fashion_mnist.load("test")
    for c in range(10):
        if c in a.classes:
            save(xtr[ytr == c][:a.train_per_class], os.path.join(a.out, "train", str(c)))
            save(xte[yte == c], os.path.join(a.out, "id", str(c)))
        else:
            save(xte[yte == c], os.path.join(a.out, "near", str(c)))
    from sklearn.datasets import load_digits
    digits = load_digits().images  # 0..16
    up = [np.asarray(Image.fromarray((d / 16.0 * 255).astype(np.uint8)).resize((28, 28), Image.BILINEAR)) for d in digits]
    save(up, os.path.join(a.out, "digits"))
    rng = np.random.default_rng(a.seed)
    uniform = rng.integers(0, 256, (500, 28, 28))
    gauss = np.clip(rng.normal(72.9, 90.0, (500, 28, 28)), 0, 255)
    save(np.concatenate([uniform, gauss]), os.path.join(a.out, "noise"))
    print(f"wrote {a.out}: ID classes {a.classes}")


if __name__ == "__main__":
    main()
