"""Writes tests/GpuAnomaly.Tests/Fixtures/onnx_import/: small ONNX models for the importer's tests, each with an input
and the output PyTorch / numpy computes for it (.npy), so the C# engine is checked against an independent reference.

Run with Debian's python (torch 1.13, onnx 1.12): /usr/bin/python3 tools/export/onnx_import_fixtures.py
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "GpuAnomaly.Tests", "Fixtures", "onnx_import")


class Cnn(torch.nn.Module):
    """Conv + BatchNorm + ReLU (folded into one conv), pools, LeakyReLU, Gemm, Softmax: the engine's fused paths."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.c2 = torch.nn.Conv2d(8, 6, 3, stride=2, padding=(1, 0), groups=2)
        self.fc = torch.nn.Linear(6 * 3 * 2, 5)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        x = torch.nn.functional.max_pool2d(x, 2)
        x = torch.nn.functional.leaky_relu(self.c2(x), 0.1)
        x = torch.nn.functional.avg_pool2d(x, 1)
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1), x.mean(dim=(2, 3))


class Block(torch.nn.Module):
    """A transformer block: LayerNorm, attention (MatMul, Transpose, Softmax, Reshape), GELU MLP, residuals."""

    def __init__(self, c=12, heads=3):
        super().__init__()
        self.heads = heads
        self.ln1 = torch.nn.LayerNorm(c)
        self.qkv = torch.nn.Linear(c, 3 * c)
        self.proj = torch.nn.Linear(c, c)
        self.ln2 = torch.nn.LayerNorm(c)
        self.fc1 = torch.nn.Linear(c, 2 * c)
        self.fc2 = torch.nn.Linear(2 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) / (c // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


def export(name, model, x, names):
    model.eval()
    with torch.no_grad():
        # Non-trivial BatchNorm statistics, so the fold into the conv is visible.
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.3, 0.3)
        ys = model(x)
        ys = ys if isinstance(ys, tuple) else (ys,)
        torch.onnx.export(model, x, os.path.join(OUT, name + ".onnx"), input_names=["x"], output_names=names, opset_version=13,
                          dynamic_axes={"x": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    np.save(os.path.join(OUT, name + ".x.npy"), x.numpy())
    for n, y in zip(names, ys):
        np.save(os.path.join(OUT, f"{name}.{n}.npy"), y.numpy())


def int_input_model():
    """An int64 input (indices) bound at load, folded shape arithmetic, and an int64 output folded exactly."""
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [3])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    nodes = [
        helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),
        helper.make_node("Shape", ["g"], ["s"]),
        helper.make_node("ReduceProd", ["s"], ["n"], keepdims=0),
        helper.make_node("Exp", ["g"], ["e"]),
        helper.make_node("Sub", ["e", "g"], ["y"]),
    ]
    g = helper.make_graph(nodes, "int_input", [x, idx], [y, n])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "int_input.onnx"))


def unsupported_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    # Ops the importer lacks (LpNormalization twice, ReverseSequence once), around one it has.
    nodes = [helper.make_node("LpNormalization", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("LpNormalization", ["b"], ["c"]), helper.make_node("ReverseSequence", ["c", "ax"], ["y"])]
    ax = helper.make_tensor("ax", TensorProto.INT64, [], [0])
    g = helper.make_graph(nodes, "unsupported", [x], [y], initializer=[ax])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(OUT, "unsupported.onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(13)
    export("cnn", Cnn(), torch.randn(2, 3, 12, 10), ["probs", "pooled"])
    export("block", Block(), torch.randn(2, 7, 12), ["y"])
    int_input_model()
    unsupported_model()
    return 0


if __name__ == "__main__":
    sys.exit(main())
