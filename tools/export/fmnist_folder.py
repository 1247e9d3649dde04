"""Writes a Fashion-MNIST one-vs-rest dataset in Anomalib's Folder/MVTec layout, for `gpuanomaly fit/eval`.

    /usr/bin/python3 tools/export/fmnist_folder.py --normal-class 1 --out /tmp/fmnist1            # test set
    /usr/bin/python3 tools/export/fmnist_folder.py --normal-class 1 --out /tmp/fit1 --validation  # fitting set

Test set (default): train/good = the class's training images, test/good = its 1000 test images,
test/<class name> = every test image of the 9 other classes (the one-vs-rest protocol of GEOM and
the Fashion-MNIST anomaly-detection tables). --validation instead writes a fitting set from TRAINING
images only, so that thresholds never see the test set: test/good = the class's last --val training
images (the ones train_students.py held out), test/<class> = --per-class training images of each
other class.
"""
import argparse
import os

import numpy as np
from PIL import Image

import fashion_mnist

NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def save(images, folder, prefix=""):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(os.path.join(folder, f"{prefix}{i:05d}.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--normal-class", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--validation", action="store_true")
    ap.add_argument("--val", type=int, default=500)
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--test-per-class", type=int, default=0,
                    help="write at most this many test images of each anomalous class (0: all; the normal class keeps all)")
    ap.add_argument("--train-limit", type=int, default=0, help="write at most this many train/good images (0: all)")
    a = ap.parse_args()
    k = a.normal_class
    xtr, ytr = fashion_mnist.load("train")
    xte, yte = fashion_mnist.load("test")
    normal_train = xtr[ytr == k]
    if a.validation:
        save(normal_train[-a.val:], os.path.join(a.out, "test", "good"))
        for c in range(10):
            if c != k:
                save(xtr[ytr == c][:a.per_class], os.path.join(a.out, "test", NAMES[c]))
    else:
        train = normal_train[:a.train_limit] if a.train_limit else normal_train
        save(train, os.path.join(a.out, "train", "good"))
        save(xte[yte == k], os.path.join(a.out, "test", "good"))
        for c in range(10):
            if c != k:
                other = xte[yte == c]
                save(other[:a.test_per_class] if a.test_per_class else other, os.path.join(a.out, "test", NAMES[c]))


if __name__ == "__main__":
    main()
