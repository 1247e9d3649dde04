"""Writes tests/GpuAnomaly.Tests/Fixtures/onnx_anomaly/: small anomaly models exported to ONNX the way Anomalib exports
them (outputs `anomaly_map` and `pred_score`, a `metadata.json` beside the model), with the scores PyTorch computes
for some of the bundled sample images, so `predict --model X.onnx` is checked against an independent reference.

- `patchcore/`: per-pixel features of two convolutions, the squared L2 distance to a memory bank of features of
  normal (trouser) images written as ||f||^2 - 2 f.M^T + ||M||^2 (MatMul, ReduceSum), min over the bank, sqrt ->
  anomaly_map [B, 1, 28, 28], its max -> pred_score [B]. metadata.json in Anomalib 1.x's keys
  (image_threshold, pixel_threshold, pred_scores.min / .max, anomaly_maps.min / .max).
- `single_output/`: the same features at stride 2, one output named `output` (a [B, 1, 14, 14] map; Anomalib's
  inferencer then takes the map's max as the score), metadata in Anomalib 0.x's keys (shared min / max).

Run with Debian's python (torch 1.13, onnx 1.12): /usr/bin/python3 tools/export/onnx_anomaly_fixture.py
"""
import json
import os

import numpy as np
import torch
from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "tests", "GpuAnomaly.Tests", "Fixtures", "onnx_anomaly")
SAMPLES = os.path.join(ROOT, "src", "Cli", "Samples")
# Images whose scores the test checks: normal and anomalous ones.
CHECKED = ["normal_trouser_00.png", "normal_trouser_01.png", "anomalous_bag_00.png", "anomalous_boot_01.png"]


def load(name):
    """[1, 28, 28] in [0, 1], as the engine's ImageFile loads a gray PNG."""
    return np.asarray(Image.open(os.path.join(SAMPLES, name)).convert("L"), dtype=np.float32)[None] / 255.0


class Features(torch.nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, stride=stride, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


class PatchCore(torch.nn.Module):
    def __init__(self, features, bank, single_output):
        super().__init__()
        self.features = features
        self.register_buffer("bank", bank)
        self.single_output = single_output

    def forward(self, x):
        f = self.features(x)
        b, c, h, w = f.shape
        q = f.permute(0, 2, 3, 1).reshape(b, h * w, c)
        d = (q * q).sum(-1, keepdim=True) - 2 * q @ self.bank.t() + (self.bank * self.bank).sum(-1)
        m = torch.sqrt(torch.clamp(d.min(-1).values, min=0)).reshape(b, 1, h, w)
        if self.single_output:
            return m
        return m, m.reshape(b, -1).max(-1).values


def export(name, stride, single_output):
    torch.manual_seed(7 + stride)
    feats = Features(stride).eval()
    names = sorted(os.listdir(SAMPLES))
    normal = [n for n in names if n.startswith("normal_trouser")]
    with torch.no_grad():
        x = torch.from_numpy(np.stack([load(n) for n in normal[:6]]))
        f = feats(x).permute(0, 2, 3, 1).reshape(-1, 8)
        bank = f[torch.randperm(f.shape[0])[:96]].clone()
        model = PatchCore(feats, bank, single_output).eval()
        every = torch.from_numpy(np.stack([load(n) for n in names]))
        outs = model(every)
        maps = outs if single_output else outs[0]
        scores = maps.reshape(maps.shape[0], -1).max(-1).values
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    dummy = torch.from_numpy(np.stack([load(n) for n in CHECKED]))
    torch.onnx.export(model, dummy, os.path.join(folder, "model.onnx"), opset_version=17, input_names=["input"],
                      output_names=["output"] if single_output else ["anomaly_map", "pred_score"],
                      dynamic_axes={"input": {0: "batch"}})
    # Thresholds between the normal and the anomalous samples' scores; min / max over all samples.
    is_normal = np.array([n.startswith("normal") for n in names])
    s = scores.numpy()
    image_threshold = float((s[is_normal].max() + s[~is_normal].min()) / 2)
    pixel_threshold = float(np.quantile(maps.numpy(), 0.9))
    if single_output:
        lo, hi = float(min(s.min(), maps.min())), float(max(s.max(), maps.max()))
        meta = {"task": "segmentation", "image_threshold": image_threshold, "pixel_threshold": pixel_threshold,
                "min": lo, "max": hi}
        img_lo, img_hi, px_lo, px_hi = lo, hi, lo, hi
    else:
        img_lo, img_hi = float(s.min()), float(s.max())
        px_lo, px_hi = float(maps.min()), float(maps.max())
        meta = {"task": "segmentation", "image_threshold": image_threshold, "pixel_threshold": pixel_threshold,
                "pred_scores.min": img_lo, "pred_scores.max": img_hi,
                "anomaly_maps.min": px_lo, "anomaly_maps.max": px_hi}
    with open(os.path.join(folder, "metadata.json"), "w") as fh:
        json.dump(meta, fh, indent=2)

    def norm(v, t, lo, hi):
        return float(np.clip((v - t) / (hi - lo) + 0.5, 0, 1))

    expected = {}
    for n in CHECKED:
        i = names.index(n)
        expected[n] = {"raw_score": float(s[i]), "pred_score": norm(s[i], image_threshold, img_lo, img_hi),
                       "pred_label": "anomalous" if norm(s[i], image_threshold, img_lo, img_hi) > 0.5 else "normal",
                       "map_max": norm(float(maps[i].max()), pixel_threshold, px_lo, px_hi)}
    with open(os.path.join(folder, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=2)
    print(name, {k: round(v["pred_score"], 4) for k, v in expected.items()})


if __name__ == "__main__":
    export("patchcore", 1, False)
    export("single_output", 2, True)
