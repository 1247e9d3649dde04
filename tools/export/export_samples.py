"""Writes the sample images bundled with the CLI (src/Cli/Samples): 50 test images of the default
model's normal class (Trouser, 1) and 50 of the other classes (5 or 6 each), all from the
Fashion-MNIST test set, which the default model never saw.

    /usr/bin/python3 tools/export/export_samples.py
"""
import os

import numpy as np
from PIL import Image

import fashion_mnist
from fmnist_folder import NAMES

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "src", "Cli", "Samples")
NORMAL = 1


def main():
    x, y = fashion_mnist.load("test")
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".png"):
            os.remove(os.path.join(OUT, f))
    for i, img in enumerate(x[y == NORMAL][:50]):
        Image.fromarray(img).save(os.path.join(OUT, f"normal_{NAMES[NORMAL]}_{i:02d}.png"))
    others = [c for c in range(10) if c != NORMAL]
    for j, c in enumerate(others):
        n = 6 if j < 50 - 5 * len(others) else 5
        for i, img in enumerate(x[y == c][:n]):
            Image.fromarray(img).save(os.path.join(OUT, f"anomalous_{NAMES[c]}_{i:02d}.png"))


if __name__ == "__main__":
    main()
