"""Whole models exported by torch.onnx.export (opset 17) with an input and PyTorch's outputs (.npy), for the C# engine's
"models checked against PyTorch" tests (issue 13 item 6).

Small models are committed in tests/GpuAnomaly.Tests/Fixtures/onnx_models/ (the default output). The torchvision models
are tens to hundreds of MB of random weights, so they are not committed: the tests run this script into a cache folder
when Debian's python (torch 1.13, torchvision 0.14, onnx 1.12) is there, and skip otherwise.

  /usr/bin/python3 tools/export/onnx_models_fixtures.py                       # the committed ones
  /usr/bin/python3 tools/export/onnx_models_fixtures.py --out DIR resnet18    # one model into DIR

Each model NAME writes NAME.onnx, NAME.input.npy and NAME.<output>.npy per output (plus NAME.memory_bank.npy for the
PatchCore-style ones). Every model has its own seed, so a file does not depend on which others were written.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "GpuAnomaly.Tests", "Fixtures", "onnx_models")


def randomize_batch_norm(model):
    """Non-trivial statistics and affine parameters (torchvision initializes mean 0, var 1, weight 1, bias 0), so the
    importer's BatchNorm folding is exercised. Scaled so activations neither explode nor vanish over 50 layers."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.4, 0.9)
            m.bias.data.uniform_(-0.2, 0.2)


class TinyResNet(torch.nn.Module):
    """torchvision's stem and BasicBlocks at widths 8 / 16 / 32: the ResNet feature layers of PatchCore, small enough
    to commit (a few hundred KB)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = torch.nn.Sequential(BasicBlock(8, 8))
        self.layer2 = torch.nn.Sequential(BasicBlock(8, 16, 2, self.down(8, 16)), BasicBlock(16, 16))
        self.layer3 = torch.nn.Sequential(BasicBlock(16, 32, 2, self.down(16, 32)))

    @staticmethod
    def down(cin, cout):
        return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride=2, bias=False), torch.nn.BatchNorm2d(cout))


class PatchCore(torch.nn.Module):
    """PatchCore's inference as Anomalib writes it: layer2 + layer3 features, 3x3 average pooling (stride 1, pad 1),
    layer3 resized to layer2's size (bilinear, align_corners=False), concatenated on channels; each patch's squared
    distance to a memory bank as ||x||^2 - 2 x.M^T + ||M||^2 (MatMul / ReduceSum: torch.cdist does not export), min over
    the bank, sqrt -> anomaly_map [B, 1, H, W] upsampled to the input size; pred_score = the map's max."""

    def __init__(self, backbone, memory_bank):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("memory_bank", memory_bank)

    def features(self, x):
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        f2 = b.layer2(b.layer1(x))
        f3 = b.layer3(f2)
        f2 = F.avg_pool2d(f2, 3, 1, 1)
        f3 = F.avg_pool2d(f3, 3, 1, 1)
        f3 = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([f2, f3], 1)

    def forward(self, x):
        emb = self.features(x)
        b, c, h, w = emb.shape
        patches = emb.permute(0, 2, 3, 1).reshape(-1, c)
        m = self.memory_bank
        d2 = patches.pow(2).sum(1, keepdim=True) - 2 * patches @ m.T + m.pow(2).sum(1).unsqueeze(0)
        score = torch.amin(d2, dim=1).clamp(min=0).sqrt()
        anomaly_map = F.interpolate(score.reshape(b, 1, h, w), size=x.shape[-2:], mode="bilinear", align_corners=False)
        pred_score = torch.amax(anomaly_map.reshape(b, -1), dim=1)
        return anomaly_map, pred_score


class TransformerBlock(torch.nn.Module):
    """A pre-norm transformer block: torch.nn.MultiheadAttention (batch_first), LayerNorm, GELU MLP, residuals."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(dim)
        self.attn = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(), torch.nn.Linear(4 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class BankDistance(torch.nn.Module):
    """PatchCore's scoring alone, on patch embeddings [Q, D]: the subgraph the importer maps onto the kNN op. clamp
    "before" is Anomalib's order (clamp the distances, then min), "after" the PatchCore model's; "none" has no clamp,
    so the importer must leave it on the generic ops (the kNN kernels clamp at 0)."""

    def __init__(self, memory_bank, clamp):
        super().__init__()
        self.register_buffer("memory_bank", memory_bank)
        self.clamp = clamp

    def forward(self, patches):
        m = self.memory_bank
        d2 = patches.pow(2).sum(1, keepdim=True) - 2 * patches @ m.T + m.pow(2).sum(1).unsqueeze(0)
        if self.clamp == "before":
            return torch.amin(d2.clamp(min=0), dim=1).sqrt()
        nearest = torch.amin(d2, dim=1)
        return nearest.clamp(min=0).sqrt() if self.clamp == "after" else nearest


def bank_distance(clamp):
    return BankDistance(torch.randn(200, 24), clamp)


def bank_queries(model, shape):
    """Bank rows plus noise: nearest distances well below the norms, as for real patches."""
    m = model.memory_bank
    return m[torch.randint(0, m.shape[0], (shape[0],))] + 0.3 * torch.randn(*shape)


def memory_bank_from(backbone, rows, size, seed):
    """Rows of the embeddings of random images (as PatchCore's coreset holds training patches), so the nearest
    distances are realistic, not those of unrelated random vectors."""
    g = torch.Generator().manual_seed(seed)
    emb = PatchCore(backbone, torch.zeros(1, 1)).features(torch.randn(16, 3, size, size, generator=g))
    patches = emb.permute(0, 2, 3, 1).reshape(-1, emb.shape[1])
    pick = torch.randperm(patches.shape[0], generator=g)[:rows]
    return patches[pick].contiguous()


def patchcore(backbone, rows, size):
    backbone.eval()
    with torch.no_grad():
        randomize_batch_norm(backbone)
        return PatchCore(backbone, memory_bank_from(backbone, rows, size, seed=7))


def resnet_features(model):
    """A torchvision ResNet without avgpool / fc / layer4 (PatchCore reads layer2 and layer3 only)."""
    model.layer4 = torch.nn.Identity()
    return model


# name -> (build(), input shape, output names); each built under its own seed.
MODELS = {
    "transformer_block": (lambda: TransformerBlock(), (2, 16, 32), ["y"]),
    "knn_distance": (lambda: bank_distance("after"), (37, 24), ["score"]),
    "knn_distance_clamp_first": (lambda: bank_distance("before"), (37, 24), ["score"]),
    "knn_distance_unclamped": (lambda: bank_distance("none"), (37, 24), ["score"]),
    "patchcore_tiny": (lambda: patchcore(TinyResNet(), 300, 64), (2, 3, 64, 64), ["anomaly_map", "pred_score"]),
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), (2, 3, 32, 32), ["logits"]),
    "wide_resnet50_2": (lambda: torchvision.models.wide_resnet50_2(weights=None), (1, 3, 32, 32), ["logits"]),
    "patchcore_resnet18": (lambda: patchcore(resnet_features(torchvision.models.resnet18(weights=None)), 400, 64),
                           (1, 3, 64, 64), ["anomaly_map", "pred_score"]),
}
COMMITTED = ["transformer_block", "knn_distance", "knn_distance_clamp_first", "knn_distance_unclamped", "patchcore_tiny"]


def export(name, out):
    torch.manual_seed(sum(map(ord, name)))
    build, shape, outputs = MODELS[name]
    model = build()
    model.eval()
    with torch.no_grad():
        randomize_batch_norm(model)
        x = bank_queries(model, shape) if isinstance(model, BankDistance) else torch.randn(*shape)
        ys = model(x)
        ys = ys if isinstance(ys, tuple) else (ys,)
    # Exported with gradients on: under no_grad MultiheadAttention takes its fused fast path
    # (aten::_native_multi_head_attention), which has no ONNX export.
    path = os.path.join(out, name + ".onnx")
    torch.onnx.export(model, x, path, input_names=["input"], output_names=outputs, opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in outputs}})
    np.save(os.path.join(out, name + ".input.npy"), x.numpy())
    for n, y in zip(outputs, ys):
        np.save(os.path.join(out, f"{name}.{n}.npy"), y.numpy())
    if isinstance(model, (PatchCore, BankDistance)):
        np.save(os.path.join(out, name + ".memory_bank.npy"), model.memory_bank.numpy())
    print(f"{name}: {os.path.getsize(path) / 1e6:.2f} MB, input {list(shape)}, " +
          ", ".join(f"{n} {list(y.shape)} (rms {y.pow(2).mean().sqrt():.3g})" for n, y in zip(outputs, ys)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=OUT)
    p.add_argument("models", nargs="*", help=f"of {', '.join(MODELS)} (default: {', '.join(COMMITTED)})")
    a = p.parse_args()
    for name in a.models:
        if name not in MODELS:
            p.error(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    os.makedirs(a.out, exist_ok=True)
    for name in a.models or COMMITTED:
        export(name, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
