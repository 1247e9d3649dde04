#!/usr/bin/env python3
"""Fixtures of the ONNX reader's tests (tests/GpuAnomaly.Tests/Onnx), written with torch.onnx.export and onnx's Python API.

    /usr/bin/python3 tools/export/onnx_reader_fixtures.py [--out tests/GpuAnomaly.Tests/Fixtures/onnx]

(Debian's python3: torch 1.13, onnx 1.12.) Deterministic: fixed seeds, and the files are rewritten byte for byte.

Valid files, each described in expected.json as onnx's Python API reads it (so the C# reader is checked against
onnx, not against itself): ir_version, producer, opsets, metadata; per graph the nodes (op type, domain, inputs,
outputs, attributes with their type number and value, subgraphs recursively), initializers (data type, dims, storage,
a position-weighted checksum sum(v[i] * (i % 7 + 1)) in float64 over the flattened values and the first values), and
inputs / outputs / value_info (elem type, dims as numbers, symbols or null).

- tiny_cnn.onnx: torch.onnx.export of a small CNN (Conv, Relu, MaxPool, Flatten, Gemm), opset 13, batch axis named
  "batch", with metadata_props added by onnx.helper.set_model_props;
- tiny_cnn_external.onnx + tiny_cnn_external.data: the same model saved with save_as_external_data=True (every
  tensor in the one data file, size_threshold=0, so each initializer has location, offset and length);
- typed.onnx: initializers in the typed fields (float_data, int64_data, int32_data for INT8/INT32/BOOL/FLOAT16,
  double_data, uint64_data, string_data), a Constant with a tensor attribute, and a custom-domain node with one
  attribute of every type (FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS, TENSORS, GRAPHS);
- subgraph.onnx: If (branches that read outer values) and Loop (a body with a carried value) from onnx.helper;
- tensor_float.pb, tensor_int64.pb: lone TensorProto files as the ONNX backend tests write them (input_0.pb).

malformed/: models made with onnx.helper without the checker, each with one fault the reader must report (the C#
tests list the expected error text): a cycle, a value produced twice, a node reading a name nothing produces, raw_data
of the wrong size, external data outside the model's directory ('..' and absolute), external data missing or short.
"""
import argparse
import json
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper


def checksum(values):
    flat = np.asarray(values).reshape(-1)
    total = 0.0
    for i, v in enumerate(flat.tolist()):
        total += float(v) * (i % 7 + 1)
    return total


def tensor_json(t, base_dir=None):
    storage = "external" if t.data_location == TensorProto.EXTERNAL else ("raw" if t.HasField("raw_data") else "typed")
    if storage == "external":
        arr = numpy_helper.to_array(t, base_dir)
    else:
        arr = numpy_helper.to_array(t)
    out = {"name": t.name, "data_type": t.data_type, "dims": list(t.dims), "storage": storage}
    if t.data_type == TensorProto.STRING:
        out["strings"] = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in arr.reshape(-1).tolist()]
    else:
        flat = arr.reshape(-1)
        out["checksum"] = checksum(flat.astype(np.float64))
        out["first"] = [float(v) for v in flat[:4].astype(np.float64)]
    return out


def value_info_json(v):
    t = v.type.tensor_type
    dims = None
    if t.HasField("shape"):
        dims = []
        for d in t.shape.dim:
            kind = d.WhichOneof("value")
            dims.append(d.dim_value if kind == "dim_value" else (d.dim_param if kind == "dim_param" else None))
    return {"name": v.name, "elem_type": t.elem_type, "dims": dims}


def attribute_json(a, base_dir):
    A = onnx.AttributeProto
    value = {
        A.FLOAT: lambda: a.f,
        A.INT: lambda: a.i,
        A.STRING: lambda: a.s.decode("utf-8"),
        A.TENSOR: lambda: tensor_json(a.t, base_dir),
        A.GRAPH: lambda: graph_json(a.g, base_dir),
        A.FLOATS: lambda: list(a.floats),
        A.INTS: lambda: list(a.ints),
        A.STRINGS: lambda: [s.decode("utf-8") for s in a.strings],
        A.TENSORS: lambda: [tensor_json(t, base_dir) for t in a.tensors],
        A.GRAPHS: lambda: [graph_json(g, base_dir) for g in a.graphs],
    }[a.type]()
    return {"type": a.type, "value": value}


def graph_json(g, base_dir):
    return {
        "name": g.name,
        "nodes": [{"name": n.name, "op_type": n.op_type, "domain": n.domain, "inputs": list(n.input), "outputs": list(n.output),
                   "attributes": {a.name: attribute_json(a, base_dir) for a in n.attribute}} for n in g.node],
        "initializers": [tensor_json(t, base_dir) for t in g.initializer],
        "inputs": [value_info_json(v) for v in g.input],
        "outputs": [value_info_json(v) for v in g.output],
        "value_info": [value_info_json(v) for v in g.value_info],
    }


def model_json(path):
    base_dir = os.path.dirname(path)
    m = onnx.load(path, load_external_data=False)
    return {
        "ir_version": m.ir_version, "producer_name": m.producer_name, "producer_version": m.producer_version,
        "opsets": {o.domain: o.version for o in m.opset_import},
        "metadata": {p.key: p.value for p in m.metadata_props},
        "graph": graph_json(m.graph, base_dir),
    }


class TinyCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def tiny_cnn(out):
    torch.manual_seed(0)
    model = TinyCnn().eval()
    path = os.path.join(out, "tiny_cnn.onnx")
    torch.onnx.export(model, torch.rand(1, 1, 8, 8), path, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
    m = onnx.load(path)
    helper.set_model_props(m, {"architecture": "tiny_cnn", "trained_on": "nothing (random weights, seed 0)"})
    onnx.checker.check_model(m)
    onnx.save_model(m, path)
    ext = os.path.join(out, "tiny_cnn_external.onnx")
    onnx.save_model(m, ext, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="tiny_cnn_external.data", size_threshold=0)
    onnx.checker.check_model(ext)
    return ["tiny_cnn.onnx", "tiny_cnn_external.onnx"]


def typed(out):
    rng = np.random.default_rng(1)
    f = rng.uniform(0.5, 2.0, size=(2, 3)).astype(np.float32)
    inits = [
        helper.make_tensor("w_float", TensorProto.FLOAT, [2, 3], f.reshape(-1).tolist()),
        helper.make_tensor("w_int64", TensorProto.INT64, [4], [3, -7, 1 << 40, -(1 << 50)]),
        helper.make_tensor("w_int32", TensorProto.INT32, [2, 2], [5, -6, 2147483647, -2147483648]),
        helper.make_tensor("w_int8", TensorProto.INT8, [3], [-128, 1, 127]),
        helper.make_tensor("w_bool", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("w_half", TensorProto.FLOAT16, [3], np.array([1.5, -2.25, 65504.0], dtype=np.float16).tolist()),
        helper.make_tensor("w_double", TensorProto.DOUBLE, [2], [3.141592653589793, -1e300]),
        helper.make_tensor("w_uint64", TensorProto.UINT64, [2], [7, 18446744073709551615]),
        helper.make_tensor("w_string", TensorProto.STRING, [2], [b"anomaly", "na\u00efve".encode("utf-8")]),
        numpy_helper.from_array(rng.uniform(1, 3, size=(3,)).astype(np.float32), "w_raw"),
    ]
    const_value = helper.make_tensor("c", TensorProto.FLOAT, [2, 3], (f * 3).reshape(-1).tolist())
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "inner",
                               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    everything = helper.make_node(
        "Everything", ["X", "", "w_raw"], ["E"], name="every_attribute", domain="gpuanomaly.test",
        f=0.25, i=-42, s="hello", t=helper.make_tensor("t", TensorProto.INT64, [2], [9, -9]), g=branch,
        floats=[1.5, -2.5, 3.0], ints=[1, -2, 1 << 35], strings=["a", "bc"],
        tensors=[helper.make_tensor("t0", TensorProto.FLOAT, [1], [2.5]), helper.make_tensor("t1", TensorProto.INT32, [2], [4, 5])],
        graphs=[branch, branch])
    nodes = [
        helper.make_node("Constant", [], ["C"], name="const", value=const_value),
        helper.make_node("Add", ["X", "w_float"], ["S"], name="add"),
        helper.make_node("Mul", ["S", "C"], ["Y"], name="mul"),
        everything,
    ]
    graph = helper.make_graph(nodes, "typed", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3]),
                               helper.make_tensor_value_info("E", TensorProto.FLOAT, None)], inits,
                              value_info=[helper.make_tensor_value_info("S", TensorProto.FLOAT, [2, None])])
    m = helper.make_model(graph, producer_name="onnx_reader_fixtures", producer_version="1",
                          opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("gpuanomaly.test", 1)])
    helper.set_model_props(m, {"purpose": "typed fields"})
    onnx.save_model(m, os.path.join(out, "typed.onnx"))
    return ["typed.onnx"]


def subgraph(out):
    rng = np.random.default_rng(2)
    scale = numpy_helper.from_array(rng.uniform(1, 2, size=(3,)).astype(np.float32), "scale")
    then_g = helper.make_graph([helper.make_node("Mul", ["X", "scale"], ["then_out"], name="then_mul")], "then_branch", [],
                               [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["X"], ["else_out"], name="else_neg")], "else_branch", [],
                               [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [3])])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "I"], ["acc_out"], name="body_add"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
        "loop_body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [3])])
    nodes = [
        helper.make_node("Abs", ["X"], ["I"], name="abs"),
        helper.make_node("If", ["cond"], ["Y"], name="if", then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "", "Y"], ["Z"], name="loop", body=body),
    ]
    graph = helper.make_graph(nodes, "subgraphs",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("Z", TensorProto.FLOAT, [3])],
                              [scale, numpy_helper.from_array(np.array(4, dtype=np.int64), "trip")])
    m = helper.make_model(graph, producer_name="onnx_reader_fixtures", opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    onnx.save_model(m, os.path.join(out, "subgraph.onnx"))
    return ["subgraph.onnx"]


def lone_tensors(out):
    rng = np.random.default_rng(3)
    t = numpy_helper.from_array(rng.uniform(-1, 1, size=(1, 2, 3)).astype(np.float32), "input_0")
    with open(os.path.join(out, "tensor_float.pb"), "wb") as f:
        f.write(t.SerializeToString())
    t = numpy_helper.from_array(np.array([[5, -3], [1 << 33, 7]], dtype=np.int64), "output_0")
    with open(os.path.join(out, "tensor_int64.pb"), "wb") as f:
        f.write(t.SerializeToString())
    return ["tensor_float.pb", "tensor_int64.pb"]


def malformed(out):
    d = os.path.join(out, "malformed")
    os.makedirs(d, exist_ok=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])

    def save(name, nodes, inits=(), outputs=(y,)):
        g = helper.make_graph(nodes, "bad", [x], list(outputs), list(inits))
        m = helper.make_model(g, producer_name="onnx_reader_fixtures", opset_imports=[helper.make_opsetid("", 13)])
        with open(os.path.join(d, name), "wb") as f:
            f.write(m.SerializeToString())

    save("cycle.onnx", [helper.make_node("Relu", ["x"], ["a"], name="first"),
                        helper.make_node("Add", ["a", "c"], ["b"], name="second"),
                        helper.make_node("Neg", ["b"], ["c"], name="third"),
                        helper.make_node("Identity", ["b"], ["y"], name="last")])
    save("duplicate_output.onnx", [helper.make_node("Relu", ["x"], ["y"], name="relu"),
                                   helper.make_node("Neg", ["x"], ["y"], name="neg")])
    save("dangling_input.onnx", [helper.make_node("Add", ["x", "missing"], ["y"], name="add")])
    raw = numpy_helper.from_array(np.array([1.5, 2.5], dtype=np.float32), "w")
    raw.raw_data = raw.raw_data[:7]
    save("raw_size.onnx", [helper.make_node("Add", ["x", "w"], ["y"], name="add")], [raw])

    def external(name, location, length=8, data_file=None):
        w = helper.make_tensor("w", TensorProto.FLOAT, [2], [0.0, 0.0])
        w.ClearField("float_data")
        w.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", str(length))):
            e = w.external_data.add()
            e.key, e.value = k, v
        save(name, [helper.make_node("Add", ["x", "w"], ["y"], name="add")], [w])

    external("external_escape.onnx", "../tiny_cnn_external.data")
    external("external_absolute.onnx", "/etc/passwd")
    external("external_missing.onnx", "no_such_file.data")
    with open(os.path.join(d, "short.data"), "wb") as f:
        f.write(np.array([1.25], dtype=np.float32).tobytes())
    external("external_short.onnx", "short.data")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "GpuAnomaly.Tests", "Fixtures", "onnx"))
    out = os.path.abspath(ap.parse_args().out)
    os.makedirs(out, exist_ok=True)
    expected = {}
    for name in tiny_cnn(out) + typed(out) + subgraph(out):
        expected[name] = model_json(os.path.join(out, name))
    for name in lone_tensors(out):
        t = TensorProto()
        with open(os.path.join(out, name), "rb") as f:
            t.ParseFromString(f.read())
        expected[name] = tensor_json(t)
    malformed(out)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f"wrote {len(expected)} described files and malformed/ to {out}: {total} bytes in all")


if __name__ == "__main__":
    main()
