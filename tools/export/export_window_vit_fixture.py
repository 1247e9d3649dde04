"""Golden fixtures for the C# window_vit parity tests (format: docs/FORMATS.md, `window_vit`).

Regenerate (from the repo root; a few seconds):
    /usr/bin/python3 tools/export/export_window_vit_fixture.py
    /usr/bin/python3 tools/export/check_window_vit.py          # independent numpy check of both

Writes tests/GpuAnomaly.Tests/Fixtures/
  window_vit_golden.safetensors  outputs of the trained src/Models/Default/window_vit_fmnist.safetensors:
    input [3, 1, 28, 28]     pixel / 255 of Fashion-MNIST test images 0, 1, 2 (before mean/std: the engine does that)
    tokens [3, 196, C]       after patch_embed.norm
    block{i} [3, 196, C]     after each block
    feature [3, C]           after norm and the mean over tokens
    logits [3, classes]
  window_vit_small.safetensors         a randomly initialized model of another shape that exercises padding:
    image 26 x 26, patch 2 -> 13 x 13 tokens, C 48, heads 3 (d 16), mlp_ratio 2, 5 classes, blocks
    window ws 4 (13 -> 16 padded), window ws 4 shift 2, sparse S 3 (13 -> 15 padded), window ws 5 shift 2
    (13 -> 15); every parameter perturbed so that biases, norm affines and the bias tables are not trivial
  window_vit_small_golden.safetensors  the same tensors for it: input [2, 1, 26, 26] (crops rows/columns 1..26
    of test images 3 and 4), tokens / block{i} [2, 169, 48], feature [2, 48], logits [2, 5]
"""
import argparse
import json
import os

import numpy as np
import torch

import fashion_mnist
import safetensors_io
import window_vit

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "GpuAnomaly.Tests", "Fixtures")


def golden(model, x, meta):
    with torch.no_grad():
        logits, feature, inter = model(torch.from_numpy(x), return_blocks=True)
    out = {"input": x, "feature": feature.numpy(), "logits": logits.numpy()}
    out.update({k: v.numpy() for k, v in inter.items()})
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}, meta


def small_model(seed=5):
    torch.manual_seed(seed)
    blocks = [{"kind": "window", "window_size": 4, "shift": 0},
              {"kind": "window", "window_size": 4, "shift": 2},
              {"kind": "sparse", "sparsity": 3},
              {"kind": "window", "window_size": 5, "shift": 2}]
    config = window_vit.default_config(5, [0, 1, 2, 3, 4], embed_dim=48, heads=3, blocks=blocks)
    config["image_size"] = [26, 26]
    model = window_vit.WindowViT(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "relative_position" in name:
                p.copy_(torch.randn_like(p))  # large enough to change which keys win
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn_like(p))
            else:  # unit-gain weights, so that attention is far from uniform
                p.copy_(torch.randn_like(p) * (p[0].numel() ** -0.5))
    return model.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "src", "Models", "Default", "window_vit_fmnist.safetensors"))
    ap.add_argument("--out", default=FIXTURES)
    args = ap.parse_args()
    torch.set_num_threads(2)
    images, labels = fashion_mnist.load("test")

    model, _ = window_vit.WindowViT.from_file(args.model)
    x = images[:3].astype(np.float32)[:, None] / 255.0
    t, _ = golden(model, x, None)
    meta = {"source_model": os.path.relpath(args.model, ROOT), "test_images": "0 1 2",
            "labels": " ".join(str(int(l)) for l in labels[:3]), "script": "tools/export/export_window_vit_fixture.py"}
    safetensors_io.save(os.path.join(args.out, "window_vit_golden.safetensors"), t, meta)
    print("window_vit_golden:", {k: v.shape for k, v in t.items()}, "predicted", t["logits"].argmax(1), "labels", labels[:3])

    small = small_model()
    prov = {"note": "randomly initialized and perturbed (not trained): fixes the arithmetic only", "seed": 5,
            "torch_version": torch.__version__, "script": "tools/export/export_window_vit_fixture.py"}
    safetensors_io.save(os.path.join(args.out, "window_vit_small.safetensors"), small.tensors(), small.metadata(prov))
    xs = images[3:5, 1:27, 1:27].astype(np.float32)[:, None] / 255.0
    ts, _ = golden(small, xs, None)
    safetensors_io.save(os.path.join(args.out, "window_vit_small_golden.safetensors"), ts,
                        {"source_model": "tests/GpuAnomaly.Tests/Fixtures/window_vit_small.safetensors",
                         "test_images": "3 4, rows and columns 1..26", "script": "tools/export/export_window_vit_fixture.py"})
    print("window_vit_small_golden:", {k: v.shape for k, v in ts.items()}, "logits", ts["logits"])


if __name__ == "__main__":
    main()
