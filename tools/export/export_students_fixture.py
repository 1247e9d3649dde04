"""Golden fixture for the C# Uninformed Students parity tests: a small, briefly trained model
(scales 17, 33, 65; width 8; descriptor_dim 64 so the C# side cannot assume 128; 3 students;
normal class 1, Trouser) and PyTorch's outputs for two Fashion-MNIST test images and a 7 x 9 crop.
The model is not meant to detect anything well: it fixes the arithmetic, not the accuracy.

Regenerate (from the repo root; about a minute or two of 2 CPU cores):
    nice -n 10 /usr/bin/python3 tools/export/export_students_fixture.py

Writes tests/GpuAnomaly.Tests/Fixtures/
  uninformed_students_small.safetensors   the model, format docs/FORMATS.md `uninformed_students`
  uninformed_students_golden.safetensors  tensors (float32):
    input [2, 1, 28, 28]                   pixel / 255: the first class-1 and first class-0 test images
    p{P}.e, p{P}.v, p{P}.score [2, 28, 28] regression error, predictive variance, normalized score
    map [2, 28, 28], image [2]             multi-scale map (mean of the per-scale scores) and its max
    small.input [1, 1, 7, 9]               crop rows 10..16, columns 9..17 of input[0]
    small.p{P}.y [1, D, 7, 9]              normalized teacher descriptors (T - mu) / sigma of the crop
    small.p{P}.mbar [1, D, 7, 9]           mean of the students' descriptors of the crop
    small.p{P}.e / .v / .score [1, 7, 9], small.map [1, 7, 9], small.image [1]
  (the crop is scored as an image of its own: dense extraction pads it, it is not cut from the 28 x 28 maps)
"""
import json
import os

import numpy as np
import torch

import fashion_mnist
import safetensors_io
import students

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "tests", "GpuAnomaly.Tests", "Fixtures")
NORMAL_CLASS = 1


def main():
    torch.set_num_threads(2)
    images, labels = fashion_mnist.load("train")
    x = students.to_input(images[labels == NORMAL_CLASS][:1100])
    model, prov = students.train(x[:1000], x[1000:], (17, 33, 65), width=8, dim=64, m=3, teacher_steps=10,
                                 student_steps=10, batch=8, seed=0, stats_images=200, normal_class=NORMAL_CLASS)
    prov["note"] = "parity fixture: briefly trained on 1000 images, not an accurate detector"
    os.makedirs(OUT_DIR, exist_ok=True)
    model_path = os.path.join(OUT_DIR, "uninformed_students_small.safetensors")
    safetensors_io.save(model_path, model.tensors(), model.metadata(prov))
    # Score with the model as read back from the file, so the fixture matches the bytes on disk.
    model = students.UninformedStudents.from_file(model_path)

    test_images, test_labels = fashion_mnist.load("test")
    picks = [int(np.flatnonzero(test_labels == NORMAL_CLASS)[0]), int(np.flatnonzero(test_labels == 0)[0])]
    xin = students.to_input(test_images[picks])
    small = xin[:1, :, 10:17, 9:18].contiguous()
    golden = {"input": xin, "small.input": small}
    for prefix, inp in (("", xin), ("small.", small)):
        out = model.score(inp)
        for p in model.scales:
            for k in ("e", "v", "score"):
                golden[f"{prefix}p{p}.{k}"] = out[p][k]
        golden[prefix + "map"] = out["map"]
        golden[prefix + "image"] = out["image"]
    with torch.no_grad():
        for p, sc in model.scales.items():
            golden[f"small.p{p}.y"] = students.normalized_teacher(sc.teacher, sc.mu, sc.sigma, small)
            golden[f"small.p{p}.mbar"] = torch.stack([s.dense(small) for s in sc.students]).mean(0)
    golden = {k: np.ascontiguousarray(v.numpy(), dtype=np.float32) for k, v in golden.items()}
    meta = {"test_indices": json.dumps(picks), "labels": json.dumps([int(test_labels[i]) for i in picks]),
            "source": "fashion-mnist t10k", "crop": "input[0, :, 10:17, 9:18]", "model": os.path.basename(model_path)}
    safetensors_io.save(os.path.join(OUT_DIR, "uninformed_students_golden.safetensors"), golden, meta)
    for k, v in golden.items():
        print(k, v.shape, float(np.abs(v).mean()))
    for f in os.listdir(OUT_DIR):
        print(f, os.path.getsize(os.path.join(OUT_DIR, f)))


if __name__ == "__main__":
    main()
