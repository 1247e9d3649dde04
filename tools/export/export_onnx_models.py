"""Writes the ONNX models of tools/export/onnx_models_fixtures.py at benchmark sizes, with a manifest for the
side-by-side against ONNX Runtime (bench/GpuAnomaly.Bench/OnnxSideBySide.cs, architecture "onnx": our engine runs
the same ONNX file through its importer).

    /usr/bin/python3 tools/export/export_onnx_models.py /tmp/onnx_models     # DIR/<name>.onnx and DIR/manifest_models.json

Sizes: the torchvision models at ImageNet's 224x224 (batch 1), PatchCore-style on ResNet-18 at 224x224 (layer2's 28x28
patches against a bank of 400 rows), the transformer block on [8, 64, 32].
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import onnx_models_fixtures as fx  # noqa: E402

SIZES = {
    "resnet18": (1, 3, 224, 224),
    "wide_resnet50_2": (1, 3, 224, 224),
    "patchcore_resnet18": (1, 3, 224, 224),
    "transformer_block": (8, 64, 32),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/onnx_models"
    os.makedirs(out, exist_ok=True)
    manifest = []
    for name, shape in SIZES.items():
        torch.manual_seed(sum(map(ord, name)))
        build, _, outputs = fx.MODELS[name]
        model = build()
        model.eval()
        with torch.no_grad():
            fx.randomize_batch_norm(model)
        x = torch.randn(*shape)
        path = os.path.join(out, name + ".onnx")
        torch.onnx.export(model, x, path, input_names=["input"], output_names=outputs, opset_version=17)
        image = len(shape) == 4
        manifest.append({"onnx": name + ".onnx", "model": "", "architecture": "onnx", "shape": list(shape),
                         "batch": shape[0], "channels": shape[1] if image else 0,
                         "height": shape[2] if image else 0, "width": shape[3] if image else 0})
        print(f"{name}: {os.path.getsize(path) / 1e6:.1f} MB, input {list(shape)}")
    with open(os.path.join(out, "manifest_models.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)


if __name__ == "__main__":
    main()
