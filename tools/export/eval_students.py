"""Image AUROC of an exported Uninformed Students model on the Fashion-MNIST test set: the model's
normal class against the other nine (image score = max of the multi-scale map), per scale too.

Example (from the repo root):
    nice -n 10 /usr/bin/python3 tools/export/eval_students.py /tmp/us_class1.safetensors [--limit N]
--limit N scores the N normal test images and N others (stratified, seed 0) instead of all 10,000.
"""
import argparse
import json
import time

import numpy as np
import torch

import fashion_mnist
import students


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = students.UninformedStudents.from_file(args.model)
    k = model.config["normal_class"]
    images, labels = fashion_mnist.load("test")
    idx = np.arange(len(labels))
    if args.limit:
        rng = np.random.default_rng(0)
        normal = rng.permutation(idx[labels == k])[:args.limit]
        other = rng.permutation(idx[labels != k])[:args.limit]
        idx = np.sort(np.concatenate([normal, other]))
    t = time.time()
    out = model.score(students.to_input(images[idx]))
    secs = time.time() - t
    anomalous = labels[idx] != k
    res = {"normal_class": int(k), "images": int(len(idx)), "seconds": round(secs, 1),
           "auroc": round(float(students.auroc(out["image"].numpy(), anomalous)), 4)}
    for p in model.scales:
        res[f"auroc_p{p}"] = round(float(students.auroc(out[p]["score"].flatten(1).max(1).values.numpy(), anomalous)), 4)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
