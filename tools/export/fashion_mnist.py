"""Fashion-MNIST from Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist)."""
import gzip
import os

import numpy as np

ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load(split="train"):
    """Returns (images uint8 [n, 28, 28], labels uint8 [n])."""
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(os.path.join(ROOT, f"{prefix}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(ROOT, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels
