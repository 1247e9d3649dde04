"""Writes tests/GpuAnomaly.Tests/Fixtures/onnx_ops/: one ONNX backend-test folder per case (model.onnx,
test_data_set_0/input_*.pb, output_*.pb) for Resize, Upsample, ConvTranspose, MaxPool's Indices, ArgMax / ArgMin,
TopK, GatherElements and Pad modes, with outputs computed by PyTorch or numpy (not by onnx's reference), so the
engine's semantics are checked independently of the node suite. `gpuanomaly onnx-test` runs the folder too.

Run with Debian's python (torch 1.13, onnx 1.12): /usr/bin/python3 tools/export/onnx_ops_fixtures.py
"""
import os
import shutil

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "GpuAnomaly.Tests", "Fixtures", "onnx_ops")
rng = np.random.default_rng(13)
TYPES = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.bool_: TensorProto.BOOL}


def rand(*shape):
    # Away from zero, odd sizes: the kernel lab's inputs.
    return (rng.standard_normal(shape) + 0.1).astype(np.float32)


def case(name, node, inputs, outputs, opset=13, initializers=()):
    """inputs / outputs: lists of (name, array); initializers: (name, array) known at import."""
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    vi = lambda n, a: helper.make_tensor_value_info(n, TYPES[a.dtype.type], a.shape)
    graph = helper.make_graph([node], name, [vi(n, a) for n, a in inputs], [vi(n, a) for n, a in outputs],
                              [numpy_helper.from_array(a, n) for n, a in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="onnx_ops_fixtures")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for kind, vals in (("input", inputs), ("output", outputs)):
        for i, (n, a) in enumerate(vals):
            with open(os.path.join(d, "test_data_set_0", f"{kind}_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())


def resize_case(name, x, sizes, torch_mode, onnx_mode, coord, align=None, **attrs):
    t = torch.from_numpy(x)
    kw = {} if align is None else {"align_corners": align}
    y = F.interpolate(t, size=sizes[2:], mode=torch_mode, **kw).numpy()
    node = helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], mode=onnx_mode, coordinate_transformation_mode=coord, **attrs)
    case(name, node, [("x", x)], [("y", y)],
         initializers=[("roi", np.zeros(0, np.float32)), ("sizes", np.array(sizes, np.int64))])


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    # Resize against torch.nn.functional.interpolate.
    resize_case("resize_bilinear_half_pixel", rand(2, 3, 5, 7), [2, 3, 9, 4], "bilinear", "linear", "half_pixel", align=False)
    resize_case("resize_bilinear_pytorch_half_pixel", rand(1, 2, 6, 5), [1, 2, 3, 11], "bilinear", "linear", "pytorch_half_pixel", align=False)
    resize_case("resize_bilinear_align_corners", rand(2, 2, 4, 5), [2, 2, 7, 3], "bilinear", "linear", "align_corners", align=True)
    resize_case("resize_nearest_asymmetric_floor", rand(1, 3, 5, 4), [1, 3, 8, 9], "nearest", "nearest", "asymmetric", nearest_mode="floor")
    resize_case("resize_bicubic_half_pixel", rand(1, 2, 5, 6), [1, 2, 9, 4], "bicubic", "cubic", "half_pixel", align=False, cubic_coeff_a=-0.75)
    resize_case("resize_linear_1d", rand(2, 3, 7), [2, 3, 4], "linear", "linear", "half_pixel", align=False)
    resize_case("resize_trilinear", rand(1, 2, 3, 4, 5), [1, 2, 5, 3, 6], "trilinear", "linear", "half_pixel", align=False)
    # Upsample (opset 9): scales input, nearest, against torch's scale_factor.
    x = rand(1, 2, 3, 4)
    y = F.interpolate(torch.from_numpy(x), scale_factor=(2, 3), mode="nearest").numpy()
    case("upsample_nearest", helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest"), [("x", x)], [("y", y)], opset=9,
         initializers=[("scales", np.array([1, 1, 2, 3], np.float32))])
    # ConvTranspose against torch.nn.functional.conv_transpose1d / 2d / 3d.
    x, w, b = rand(2, 4, 5, 6), rand(4, 3, 3, 3), rand(6)
    y = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=(2, 1), padding=(1, 0),
                           output_padding=(1, 0), groups=2, dilation=(1, 2)).numpy()
    case("conv_transpose_2d", helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 1], pads=[1, 0, 1, 0],
                                               output_padding=[1, 0], group=2, dilations=[1, 2]),
         [("x", x)], [("y", y)], initializers=[("w", w), ("b", b)])
    x, w = rand(1, 3, 7), rand(3, 2, 4)
    y = F.conv_transpose1d(torch.from_numpy(x), torch.from_numpy(w), stride=3, padding=2).numpy()
    case("conv_transpose_1d", helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[3], pads=[2, 2]),
         [("x", x)], [("y", y)], initializers=[("w", w)])
    x, w, b = rand(1, 2, 3, 4, 3), rand(2, 2, 2, 3, 2), rand(2)
    y = F.conv_transpose3d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride=2, padding=(0, 1, 0)).numpy()
    case("conv_transpose_3d", helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2, 2], pads=[0, 1, 0, 0, 1, 0]),
         [("x", x)], [("y", y)], initializers=[("w", w), ("b", b)])
    # MaxPool's Indices: torch's indices are per (batch, channel) plane; ONNX's count from the tensor's start.
    x = rand(2, 3, 7, 6)
    y, idx = F.max_pool2d(torch.from_numpy(x), 3, stride=2, padding=1, return_indices=True)
    idx = idx.numpy() + (np.arange(6).reshape(2, 3, 1, 1) * 7 * 6)
    case("maxpool_indices", helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
         [("x", x)], [("y", y.numpy()), ("i", idx.astype(np.int64))], opset=12)
    # ArgMax / ArgMin with ties (small integers), first and last index (numpy: argmax of the reversed axis).
    x = rng.integers(-3, 4, (3, 5, 4)).astype(np.float32)
    case("argmax_ties_first", helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0),
         [("x", x)], [("y", np.argmax(x, 1).astype(np.int64))])
    last = x.shape[2] - 1 - np.argmin(x[:, :, ::-1], 2)
    case("argmin_ties_last", helper.make_node("ArgMin", ["x"], ["y"], axis=-1, keepdims=1, select_last_index=1),
         [("x", x)], [("y", last[:, :, None].astype(np.int64))])
    # TopK against torch.topk (distinct values).
    x = rand(3, 7, 4)
    v, i = torch.topk(torch.from_numpy(x), 3, dim=1, largest=True, sorted=True)
    case("topk_largest", helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1), [("x", x)], [("v", v.numpy()), ("i", i.numpy())],
         initializers=[("k", np.array([3], np.int64))])
    v, i = torch.topk(torch.from_numpy(x), 2, dim=-1, largest=False, sorted=True)
    case("topk_smallest", helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1, largest=0), [("x", x)],
         [("v", v.numpy()), ("i", i.numpy())], initializers=[("k", np.array([2], np.int64))])
    # GatherElements against torch.gather (negative indices made positive for torch).
    x = rand(4, 5, 3)
    ind = rng.integers(-4, 4, (3, 5, 2)).astype(np.int64)
    y = torch.gather(torch.from_numpy(x), 0, torch.from_numpy(np.where(ind < 0, ind + 4, ind))).numpy()
    case("gather_elements", helper.make_node("GatherElements", ["x", "ind"], ["y"], axis=0), [("x", x)], [("y", y)],
         initializers=[("ind", ind)])
    # Pad modes against numpy.pad.
    x = rand(2, 3, 4, 5)
    for mode in ("edge", "reflect"):
        pads = [0, 1, 3, 2, 0, 2, 1, 4]
        y = np.pad(x, list(zip(pads[:4], pads[4:])), mode=mode)
        case(f"pad_{mode}", helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode), [("x", x)], [("y", y)],
             initializers=[("pads", np.array(pads, np.int64))])
    tensor_ops()
    # Integer results: Pow of an int64 input by a float input folds (OnnxInference binds the float input).
    x, e = np.array([[1, 2, -3], [4, 0, 5]], np.int64), np.array([[3, 2.5, 2], [0.5, 4, 1]], np.float32)
    case("pow_int64_by_float", helper.make_node("Pow", ["x", "e"], ["y"]), [("x", x), ("e", e)],
         [("y", np.power(x.astype(np.float64), e.astype(np.float64)).astype(np.int64))], opset=15)
    # Dropout in training mode with ratio 0: the identity and an all-true mask.
    x = rand(2, 3, 4)
    node = helper.make_node("Dropout", ["x", "ratio", "training"], ["y", "mask"], seed=1)
    d = os.path.join(OUT, "dropout_training_ratio_0")
    case("dropout_training_ratio_0", node, [("x", x)], [("y", x)], initializers=[("ratio", np.array(0, np.float32)), ("training", np.array(True))])
    _fix_bool_output(d, "mask", x.shape)
    print(f"wrote {len(os.listdir(OUT))} cases to {os.path.normpath(OUT)}")
    refused()


def tensor_ops():
    """Tile, DepthToSpace / SpaceToDepth, Trilu, CumSum, Hardmax, Shrink, Einsum, InstanceNormalization against numpy / torch."""
    x = rand(2, 3, 4)
    case("tile", helper.make_node("Tile", ["x", "r"], ["y"]), [("x", x)], [("y", np.tile(x, (2, 1, 3)))],
         initializers=[("r", np.array([2, 1, 3], np.int64))])
    x = rand(2, 8, 3, 5)
    # torch's pixel_shuffle is ONNX's CRD mode; DCR from numpy (onnx's definition).
    case("depth_to_space_crd", helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD"), [("x", x)],
         [("y", F.pixel_shuffle(torch.from_numpy(x), 2).numpy())])
    dcr = x.reshape(2, 2, 2, 2, 3, 5).transpose(0, 3, 4, 1, 5, 2).reshape(2, 2, 6, 10)
    case("depth_to_space_dcr", helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="DCR"), [("x", x)], [("y", dcr)])
    x = rand(2, 3, 6, 4)
    s2d = x.reshape(2, 3, 3, 2, 2, 2).transpose(0, 3, 5, 1, 2, 4).reshape(2, 12, 3, 2)
    case("space_to_depth", helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2), [("x", x)], [("y", s2d)])
    x = rand(2, 4, 5)
    case("trilu_upper_k1", helper.make_node("Trilu", ["x", "k"], ["y"], upper=1), [("x", x)], [("y", np.triu(x, 1))],
         opset=14, initializers=[("k", np.array(1, np.int64))])
    case("trilu_lower_km1", helper.make_node("Trilu", ["x", "k"], ["y"], upper=0), [("x", x)], [("y", np.tril(x, -1))],
         opset=14, initializers=[("k", np.array(-1, np.int64))])
    x = rand(3, 5, 2)
    rev_excl = np.flip(np.cumsum(np.flip(x, 1), 1), 1) - x
    case("cumsum_reverse_exclusive", helper.make_node("CumSum", ["x", "a"], ["y"], reverse=1, exclusive=1), [("x", x)],
         [("y", rev_excl.astype(np.float32))], initializers=[("a", np.array(1, np.int64))])
    case("cumsum", helper.make_node("CumSum", ["x", "a"], ["y"]), [("x", x)], [("y", np.cumsum(x, -1))],
         initializers=[("a", np.array(-1, np.int64))])
    x = rand(3, 4, 5)
    hm = (np.arange(4)[None, :, None] == np.argmax(x, 1)[:, None, :]).astype(np.float32)
    case("hardmax_axis_1", helper.make_node("Hardmax", ["x"], ["y"], axis=1), [("x", x)], [("y", hm)])
    x = rand(4, 6) * 2
    case("shrink_soft", helper.make_node("Shrink", ["x"], ["y"], lambd=0.7, bias=0.7), [("x", x)],
         [("y", F.softshrink(torch.from_numpy(x), 0.7).numpy())], opset=9)
    case("shrink_hard", helper.make_node("Shrink", ["x"], ["y"], lambd=0.7), [("x", x)],
         [("y", F.hardshrink(torch.from_numpy(x), 0.7).numpy())], opset=9)
    a, b = rand(2, 3, 4), rand(2, 4, 5)
    for name, eq, ops in (("einsum_bmm", "bij,bjk->bik", (a, b)), ("einsum_implicit", "bij,bjk", (a, b)),
                          ("einsum_transpose_sum", "bij->jb", (a,)), ("einsum_diagonal_ellipsis", "...ii->...i", (rand(2, 3, 3),))):
        names = [f"x{i}" for i in range(len(ops))]
        case(name, helper.make_node("Einsum", names, ["y"], equation=eq), list(zip(names, ops)),
             [("y", np.einsum(eq, *ops).astype(np.float32))], opset=12)
    x, sc, bb = rand(2, 3, 4, 5), rand(3), rand(3)
    y = F.instance_norm(torch.from_numpy(x), weight=torch.from_numpy(sc), bias=torch.from_numpy(bb), eps=1e-5).numpy()
    case("instance_norm", helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-5), [("x", x)], [("y", y)],
         initializers=[("s", sc), ("b", bb)])


def refused():
    """Fixtures/onnx_ops_refused/: models the importer must refuse with a typed error (no data)."""
    out = os.path.join(OUT, "..", "onnx_ops_refused")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    f = lambda n, *shape: helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)

    def save(name, nodes, inputs, outputs, inits=(), opset=13):
        g = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(a, n) for n, a in inits])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), os.path.join(out, name + ".onnx"))

    save("dropout_training", [helper.make_node("Dropout", ["x", "ratio", "training"], ["y"])], [f("x", 2, 3)], [f("y", 2, 3)],
         [("ratio", np.array(0.25, np.float32)), ("training", np.array(True))])
    save("batchnorm_training", [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], training_mode=1)],
         [f("x", 2, 3)], [f("y", 2, 3)], [(k, np.ones(3, np.float32)) for k in "sbmv"], opset=15)
    save("cast_string", [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.STRING)], [f("x", 2)],
         [helper.make_tensor_value_info("y", TensorProto.STRING, [2])])
    save("sequence_input", [helper.make_node("Identity", ["x"], ["y"])],
         [helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, [2])], [helper.make_tensor_sequence_value_info("y", TensorProto.FLOAT, [2])])
    # 4097 * 4097 > 2^24: MaxPool's indices would not be exact in float32.
    save("maxpool_indices_past_2p24", [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])], [f("x", 1, 1, 4097, 4097)],
         [f("y", 1, 1, 4096, 4096), helper.make_tensor_value_info("i", TensorProto.INT64, [1, 1, 4096, 4096])], opset=12)
    save("cast_runtime_to_int64", [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT64)], [f("x", 3)],
         [helper.make_tensor_value_info("y", TensorProto.INT64, [3])])


def _fix_bool_output(d, name, shape):
    """Adds a BOOL output (case() writes float / int64 values only) to a case folder: the model's output and its data."""
    m = onnx.load(os.path.join(d, "model.onnx"))
    m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.BOOL, shape))
    onnx.save(m, os.path.join(d, "model.onnx"))
    with open(os.path.join(d, "test_data_set_0", "output_1.pb"), "wb") as f:
        f.write(numpy_helper.from_array(np.ones(shape, bool), name).SerializeToString())


if __name__ == "__main__":
    main()
