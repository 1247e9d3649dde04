"""Exports the engine demo: Uninformed Students patch networks p = 17 and p = 33 (width 32,
1 input channel, 128-d descriptors) with PyTorch's default initialisation (seed 0; untrained:
the demo shows that the engine reproduces PyTorch, not anomaly detection), plus a golden
fixture of Fashion-MNIST test images and PyTorch's dense descriptors.

Regenerate (from the repo root):
    /usr/bin/python3 tools/export/export_demo.py
"""
import json
import os

import numpy as np
import torch

import fashion_mnist
import safetensors_io
from patchnet import SLOPE, PatchNetwork

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "src", "Models", "Demo")
SCALES = (17, 33)
WIDTH = 32
IN_CHANNELS = 1
OUT_DIM = 128
N_IMAGES = 2


def main():
    torch.manual_seed(0)
    nets = {p: PatchNetwork(p, IN_CHANNELS, WIDTH, OUT_DIM).eval() for p in SCALES}
    weights = {}
    for p, net in nets.items():
        for name, t in net.state_dict().items():
            weights[f"p{p}.{name}"] = t.numpy()
    config = {"scales": list(SCALES), "in_channels": IN_CHANNELS, "width": WIDTH, "descriptor_dim": OUT_DIM,
              "leaky_relu_slope": SLOPE, "input_size": [28, 28], "input_scale": "pixel / 255"}
    meta = {"format": "gpuanomaly", "architecture": "patch_network_demo", "config": json.dumps(config),
            "torch_version": torch.__version__, "note": "untrained, PyTorch default init with seed 0"}
    os.makedirs(OUT_DIR, exist_ok=True)
    safetensors_io.save(os.path.join(OUT_DIR, "patchnet_demo.safetensors"), weights, meta)

    images, labels = fashion_mnist.load("test")
    x = torch.from_numpy(images[:N_IMAGES].astype(np.float32) / 255.0).unsqueeze(1)
    golden = {"input": x.numpy()}
    # A small crop too, for the ILGPU CPU emulator (it runs every GPU thread one by one).
    small = x[:1, :, 9:15, 10:17].contiguous()
    golden["small.input"] = small.numpy()
    with torch.no_grad():
        for p, net in nets.items():
            golden[f"p{p}.dense"] = net.dense(x).numpy()
            golden[f"small.p{p}.dense"] = net.dense(small).numpy()
    safetensors_io.save(os.path.join(OUT_DIR, "patchnet_demo_golden.safetensors"), golden,
                        {"labels": json.dumps([int(l) for l in labels[:N_IMAGES]]), "source": "fashion-mnist t10k"})
    for k, v in golden.items():
        print(k, v.shape, float(np.abs(v).mean()))


if __name__ == "__main__":
    main()
