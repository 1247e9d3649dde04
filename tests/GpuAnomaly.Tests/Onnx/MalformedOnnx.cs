using System.Text;
using Google.Protobuf;
using static GpuAnomaly.Tests.Onnx.OnnxProtos;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// Malformed ONNX models, each with a fragment the reader's error message must contain and, where one part of the
/// file is at fault, the error's location. Reusable: the CLI tests write each case to a file and check that
/// `gpuanomaly inspect` fails with one line. Parse them with an existing, empty base directory (external data is
/// then looked up and not found, as for a file written to a temporary folder).
/// </summary>
public static class MalformedOnnx
{
    public static IEnumerable<(string Name, byte[] Bytes, string Fragment, string? Location)> Cases
    {
        get
        {
            byte[] valid = Model();
            const string W = "graph.initializer[0] 'w'";

            // Not ONNX at all.
            yield return ("empty", [], "file is empty, not an ONNX model", null);
            yield return ("png", [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], "is a PNG image, not an ONNX model", null);
            yield return ("jpeg", [0xFF, 0xD8, 0xFF, 0xE0, 0, 16], "is a JPEG image", null);
            yield return ("safetensors", [2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}'], "is a safetensors file", null);
            yield return ("zip", [.. "PK\x03\x04"u8, 20, 0], "is a ZIP archive (a PyTorch .pt/.pth checkpoint is one", null);
            yield return ("text", Encoding.ASCII.GetBytes("ir_version: 8\ngraph { }\n"), "is a text file", null);
            yield return ("no-graph", new ProtoBuilder().Int(1, 8).String(2, "pytorch").ToArray(), "is not an ONNX model: it has no graph", null);
            yield return ("no-graph-no-ir", new ProtoBuilder().Int(30, 1).ToArray(), "has no graph (ModelProto field 7) and no ir_version", null);

            // Truncation and lengths.
            yield return ("truncated-last-byte", valid[..^1], "field 8 (opset_import): the message ends in the middle of a field", "model");
            yield return ("truncated-half", valid[..(valid.Length / 2)], "the message ends in the middle of a field", "model");
            yield return ("truncated-in-tag", [.. valid, 0x80], "a field tag: the message ends in the middle of a field", "model");
            yield return ("graph-length-past-end", GraphField(ProtoBuilder.Varint(1_000_000), [0x0A, 0x00]), "field 7 (graph): the message ends in the middle of a field", "model");
            yield return ("graph-length-2^32-1", GraphField(ProtoBuilder.Varint(uint.MaxValue), [0x0A]), "field 7 (graph): a length is negative", "model");
            yield return ("graph-length-2^64-1", GraphField(ProtoBuilder.Varint(ulong.MaxValue), [0x0A]), "field 7 (graph): a length is negative", "model");
            yield return ("raw-data-length-past-end", Model(Graph(initializers: [Tensor("w", FloatType, [2], null).Tag(9, WireFormat.WireType.LengthDelimited).Raw(ProtoBuilder.Varint(int.MaxValue))])),
                "field 9 (raw_data): the message ends in the middle of a field", W);

            // Wire types, tags and varints.
            yield return ("graph-as-varint", new ProtoBuilder().Int(1, 8).Int(7, 5).ToArray(), "field 7 (graph) has wire type 0 (varint), expected 2 (length-delimited)", "model");
            yield return ("ir-version-as-string", new ProtoBuilder().String(1, "8").Message(7, Graph()).ToArray(), "field 1 (ir_version) has wire type 2 (length-delimited), expected 0 (varint)", "model");
            yield return ("raw-data-as-fixed32", WithWeight(Tensor("w", FloatType, [2], null).Float(9, 1.5f)), "field 9 (raw_data) has wire type 5 (fixed 32-bit), expected 2", W);
            yield return ("dims-as-fixed64", WithWeight(new ProtoBuilder().Tag(1, WireFormat.WireType.Fixed64).Raw(BitConverter.GetBytes(2L)).Int(2, FloatType).String(8, "w").Bytes(9, TwoFloats)),
                "field 1 (dims) has wire type 1 (fixed 64-bit), expected 0 (varint) or a packed run (length-delimited)", "graph.initializer[0]");
            yield return ("node-name-as-varint", Model(Graph(nodes: [new ProtoBuilder().String(1, "x").String(1, "w").String(2, "y").Int(3, 7).String(4, "Add")])),
                "field 3 (name) has wire type 0 (varint)", "graph.node[0]");
            yield return ("malformed-varint", [0x08, .. Enumerable.Repeat((byte)0xFF, 10), 0x01], "field 1 (ir_version): malformed varint", "model");
            yield return ("wire-type-6", [.. valid, 0x0E, 0x01], "field 1 has wire type 6, which protobuf does not define", "model");
            yield return ("wire-type-7", [0x0F, .. valid], "field 1 has wire type 7, which protobuf does not define", "model");
            yield return ("field-number-zero", [0x02, 0x00, .. valid], "invalid tag (field number 0)", "model");
            yield return ("end-group-alone", [.. valid, 0xA4, 0x01], "does not match its end", "model");
            yield return ("groups-nested-200", [.. valid, .. Enumerable.Repeat((byte)0xA3, 200).SelectMany(b => new[] { b, (byte)0x01 })],
                "groups nested deeper than protobuf's limit of 100", "model");
            yield return ("data-type-over-int32", WithWeight(new ProtoBuilder().Packed(1, 2).Int(2, 1L << 40).String(8, "w").Bytes(9, TwoFloats)),
                "field 2 (data_type) is 1099511627776, out of the int32 range", "graph.initializer[0]");
            yield return ("invalid-utf8-name", Model(Graph(nodes: [new ProtoBuilder().String(1, "x").String(1, "w").String(2, "y").Bytes(3, [0x61, 0xC0, 0xAF]).String(4, "Add")])),
                "field 3 (name): a string is not valid UTF-8", "graph.node[0]");

            // Tensors: dims, types, data sizes.
            yield return ("negative-dim", WithWeight(Tensor("w", FloatType, [-3, 2], TwoFloats)), "dimension 0 of [-3, 2] is negative", W);
            yield return ("dims-overflow-int64", WithWeight(Tensor("w", FloatType, [1L << 40, 1L << 40, 1L << 40], TwoFloats)), "hold more than 1099511627776 elements (2^40)", W);
            yield return ("dims-over-limit", WithWeight(Tensor("w", FloatType, [1L << 21, 1L << 20], TwoFloats)), "dims [2097152, 1048576] hold more than 1099511627776 elements", W);
            yield return ("dims-with-zero-overflow", WithWeight(Tensor("w", FloatType, [long.MaxValue, 4, 0], [])), "hold more than 1099511627776 elements", W);
            yield return ("raw-data-short", WithWeight(Tensor("w", FloatType, [2], TwoFloats[..7])), "raw_data holds 7 bytes but FLOAT [2] needs 8", W);
            yield return ("raw-data-long", WithWeight(Tensor("w", FloatType, [2], [.. TwoFloats, 0])), "raw_data holds 9 bytes but FLOAT [2] needs 8", W);
            yield return ("raw-data-for-huge-dims", WithWeight(Tensor("w", FloatType, [1L << 20, 1L << 19], TwoFloats)), "raw_data holds 8 bytes but FLOAT [1048576, 524288] needs 2199023255552", W);
            yield return ("unknown-data-type", WithWeight(Tensor("w", 99, [2], TwoFloats)), "data_type 99 is not a TensorProto.DataType", W);
            yield return ("negative-data-type", WithWeight(Tensor("w", -1, [2], TwoFloats)), "data_type -1 is not a TensorProto.DataType", W);
            yield return ("missing-data-type", WithWeight(new ProtoBuilder().Packed(1, 2).String(8, "w").Bytes(9, TwoFloats)), "initializer has no data_type (UNDEFINED)", W);
            yield return ("no-data", WithWeight(Tensor("w", FloatType, [2], null)), "has no data for the 2 elements of FLOAT [2]", W);
            yield return ("data-twice", WithWeight(Tensor("w", FloatType, [2], TwoFloats).Float(4, 1.5f).Float(4, 2.5f)), "holds its data twice (raw_data and float_data)", W);
            yield return ("float-data-count", WithWeight(Tensor("w", FloatType, [2], null).Float(4, 1.5f).Float(4, 2.5f).Float(4, 3.5f)), "float_data holds 3 values but FLOAT [2] needs 2", W);
            yield return ("float-data-packed-odd", WithWeight(Tensor("w", FloatType, [2], null).Bytes(4, TwoFloats[..7])), "a packed run of 7 bytes is not a whole number of 4-byte floats", W);
            yield return ("float-data-for-int64", WithWeight(Tensor("w", Int64Type, [2], null).Float(4, 1.5f).Float(4, 2.5f)), "holds float_data, which is for FLOAT and COMPLEX64, but is INT64 [2]", W);
            yield return ("int64-data-for-float", WithWeight(Tensor("w", FloatType, [2], null).Packed(7, 3, 4)), "holds int64_data, which is for INT64, but is FLOAT [2]", W);
            yield return ("int32-data-out-of-int8", WithWeight(Tensor("w", Int8Type, [2], null).Packed(5, 300, 1)), "int32_data element 0 is 300, out of the range of INT8", W);
            yield return ("int32-data-for-int64", WithWeight(Tensor("w", Int64Type, [2], null).Packed(5, 3, 1)), "holds int32_data, which is for types of 32 bits or less", W);
            yield return ("uint64-data-out-of-uint32", WithWeight(Tensor("w", UInt32Type, [2], null).Packed(11, 1L << 33, 1)), "uint64_data element 0 is 8589934592, out of the range of UINT32", W);
            yield return ("string-data-count", WithWeight(Tensor("w", StringType, [2], null).String(6, "a")), "string_data holds 1 strings but STRING [2] has 2 elements", W);
            yield return ("string-data-for-float", WithWeight(Tensor("w", FloatType, [2], null).String(6, "a").String(6, "b")), "holds string_data, which is for STRING tensors, but is FLOAT", W);
            yield return ("string-in-raw-data", WithWeight(Tensor("w", StringType, [2], TwoFloats)), "a STRING tensor keeps its elements in string_data, not raw_data", W);
            yield return ("segment", WithWeight(Tensor("w", FloatType, [2], TwoFloats).Message(3, new ProtoBuilder().Int(1, 0).Int(2, 2))), "segmented tensors (TensorProto.segment) are not supported", W);
            yield return ("data-location-5", WithWeight(Tensor("w", FloatType, [2], TwoFloats).Int(14, 5)), "data_location 5 is neither DEFAULT (0) nor EXTERNAL (1)", W);
            yield return ("external-data-but-default", WithWeight(Tensor("w", FloatType, [2], TwoFloats).Message(13, Entry("location", "w.bin"))), "has external_data but its data_location is DEFAULT", W);
            yield return ("external-and-raw", WithWeight(Tensor("w", FloatType, [2], TwoFloats).Message(13, Entry("location", "w.bin")).Int(14, 1)), "holds its data twice (raw_data and external data)", W);
            yield return ("external-no-location", WithWeight(External(Entry("offset", "0"))), "external_data has no location", W);
            yield return ("external-bad-offset", WithWeight(External(Entry("location", "w.bin"), Entry("offset", "-4"))), "external_data offset '-4' is not a non-negative integer", W);
            yield return ("external-duplicate-key", WithWeight(External(Entry("location", "w.bin"), Entry("location", "v.bin"))), "key 'location' is given twice", $"{W} external_data[1]");
            yield return ("external-not-found", WithWeight(External(Entry("location", "w.bin"))), "external data file 'w.bin' does not exist", W);
            yield return ("external-dotdot", WithWeight(External(Entry("location", "data/../../w.bin"))), "the location leaves the model's directory ('..')", W);
            yield return ("external-absolute", WithWeight(External(Entry("location", "/etc/passwd"))), "the location is an absolute path", W);
            yield return ("external-backslash-absolute", WithWeight(External(Entry("location", "\\\\server\\share\\w.bin"))), "the location is an absolute path", W);
            yield return ("external-drive", WithWeight(External(Entry("location", "C:w.bin"))), "the location is an absolute path", W);
            yield return ("external-nul", WithWeight(External(Entry("location", "w\0.bin"))), "the location holds a NUL character", W);

            // Nodes, attributes, value infos.
            yield return ("node-no-op-type", Model(Graph(nodes: [new ProtoBuilder().String(1, "x").String(2, "y").String(3, "n")])), "node has no op_type", "graph.node[0] 'n'");
            yield return ("attribute-no-name", Model(Graph(nodes: [Node("Add", ["x", "w"], ["y"], "add", new ProtoBuilder().Int(20, 2).Int(3, 1))])), "attribute has no name", "graph.node[0] 'add' attribute[0]");
            yield return ("attribute-type-99", Model(Graph(nodes: [Node("Add", ["x", "w"], ["y"], "add", new ProtoBuilder().String(1, "axis").Int(20, 99))])),
                "attribute type 99 is not an AttributeProto.AttributeType", "graph.node[0] 'add' attribute 'axis'");
            yield return ("attribute-no-type-no-value", Model(Graph(nodes: [Node("Add", ["x", "w"], ["y"], "add", new ProtoBuilder().String(1, "axis"))])),
                "attribute has no type and no value", "graph.node[0] 'add' attribute 'axis'");
            yield return ("attribute-no-type-two-values", Model(Graph(nodes: [Node("Add", ["x", "w"], ["y"], "add", new ProtoBuilder().String(1, "axis").Int(3, 1).Float(2, 1.5f))])),
                "attribute has no type and values of several types (FLOAT, INT)", "graph.node[0] 'add' attribute 'axis'");
            yield return ("attribute-type-mismatch", Model(Graph(nodes: [Node("Add", ["x", "w"], ["y"], "add", new ProtoBuilder().String(1, "pads").Int(20, 7).Float(2, 1.5f))])),
                "attribute has type INTS but also holds FLOAT values", "graph.node[0] 'add' attribute 'pads'");
            yield return ("attribute-graph-missing", Model(Graph(nodes: [Node("If", ["x"], ["y"], "if", new ProtoBuilder().String(1, "then_branch").Int(20, 5))])),
                "attribute has type GRAPH but no graph", "graph.node[0] 'if' attribute 'then_branch'");
            yield return ("attribute-twice", Model(Graph(nodes: [Node("Add", ["x", "w"], ["y"], "add", IntAttribute("axis", 1), IntAttribute("axis", 2))])),
                "attribute 'axis' is given twice", "graph.node[0] 'add'");
            yield return ("attribute-tensor-bad", Model(Graph(nodes: [Node("Constant", [], ["y"], "const",
                new ProtoBuilder().String(1, "value").Int(20, 4).Message(5, Tensor("", FloatType, [3], TwoFloats)))], initializers: [], inputs: [])),
                "raw_data holds 8 bytes but FLOAT [3] needs 12", "graph.node[0] 'const' attribute 'value'");
            yield return ("elem-type-99", Model(Graph(inputs: [ValueInfo("x", 99, 2)])), "elem_type 99 is not a TensorProto.DataType", "graph.input[0] 'x'");
            yield return ("dim-value-negative", Model(Graph(inputs: [ValueInfo("x", FloatType, 2, -1)])), "dim_value -1 is negative", "graph.input[0] 'x' dim 1");

            // Graph structure.
            yield return ("sparse-initializer", Model(Graph(extra: g => g.Message(15, new ProtoBuilder()))), "sparse initializers (GraphProto.sparse_initializer) are not supported", "graph");
            yield return ("two-graphs", Model(extra: m => m.Message(7, Graph())), "the model has two graph fields", "model");
            yield return ("duplicate-initializer", Model(Graph(initializers: [Weight(), Weight()])), "duplicate initializer name (also graph.initializer[0] 'w')", "graph.initializer[1] 'w'");
            yield return ("initializer-no-name", Model(Graph(initializers: [Tensor("", FloatType, [2], TwoFloats)])), "initializer has no name", "graph.initializer[0]");
            yield return ("duplicate-input", Model(Graph(inputs: [ValueInfo("x", FloatType, 2), ValueInfo("x", FloatType, 2)])), "duplicate graph input name", "graph.input[1] 'x'");
            yield return ("duplicate-output-name", Model(Graph(outputs: [ValueInfo("y", FloatType, 2), ValueInfo("y", FloatType, 2)])), "duplicate graph output name", "graph.output[1] 'y'");
            yield return ("two-producers", Model(Graph(nodes: [Node("Relu", ["x"], ["y"], "relu"), Node("Neg", ["x"], ["y"], "neg")])),
                "output 'y' is already defined by graph.node[0] 'relu': a value has one producer", "graph.node[1] 'neg'");
            yield return ("output-overwrites-input", Model(Graph(nodes: [Node("Relu", ["w"], ["x"], "relu"), AddNode()])),
                "output 'x' is already defined by graph.input[0] 'x'", "graph.node[0] 'relu'");
            yield return ("output-overwrites-initializer", Model(Graph(nodes: [Node("Relu", ["x"], ["w"], "relu"), AddNode()])),
                "output 'w' is already defined by graph.initializer[0] 'w'", "graph.node[0] 'relu'");
            yield return ("same-output-twice", Model(Graph(nodes: [Node("Split", ["x"], ["y", "y"], "split")])), "output 'y' is already defined by this node", "graph.node[0] 'split'");
            yield return ("dangling-input", Model(Graph(nodes: [Node("Add", ["x", "missing"], ["y"], "add")])),
                "input 1 'missing' is produced by no node and is not a graph input or initializer", "graph.node[0] 'add'");
            yield return ("output-unproduced", Model(Graph(outputs: [ValueInfo("z", FloatType, 2)])), "graph output 'z' is produced by no node", "graph.output[0] 'z'");
            yield return ("self-loop", Model(Graph(nodes: [Node("Add", ["x", "y"], ["y"], "add")])), "the nodes form a cycle, so no order can run them: 'add' -> 'add'", "graph");
            yield return ("cycle-of-three", Model(Graph(nodes: [Node("Relu", ["x"], ["a"], "first"), Node("Add", ["a", "c"], ["b"], ""), Node("Neg", ["b"], ["c"], "third"), Node("Identity", ["b"], ["y"], "last")])),
                "the nodes form a cycle, so no order can run them: node[1] (Add) -> 'third' -> node[1] (Add)", "graph");
            yield return ("subgraph-dangling", Model(Graph(nodes: [AddNode(), Node("If", ["x"], ["z"], "if", GraphAttribute("then_branch", Graph(nodes: [Node("Neg", ["nowhere"], ["z2"], "neg")], initializers: [], inputs: [], outputs: [ValueInfo("z2")])))],
                    outputs: [ValueInfo("z")])),
                "input 0 'nowhere' is produced by no node and is not a graph input or initializer nor a value of an enclosing graph", "graph.node[1] 'if' attribute 'then_branch'.node[0] 'neg'");
            yield return ("subgraphs-17-deep", Model(Nested(18)), "subgraphs nest deeper than 16 levels", null);
            yield return ("subgraph-cycle-through-outer", Model(Graph(nodes: [
                    Node("If", ["x"], ["z"], "if", GraphAttribute("then_branch", Graph(nodes: [Node("Neg", ["y"], ["z2"], "neg")], initializers: [], inputs: [], outputs: [ValueInfo("z2")]))),
                    Node("Add", ["x", "z"], ["y"], "add")])),
                "the nodes form a cycle, so no order can run them: 'if' -> 'add' -> 'if'", "graph");

            // Model fields.
            yield return ("no-ir-version", new ProtoBuilder().Message(7, Graph()).ToArray(), "the model has no ir_version", null);
            yield return ("ir-version-zero", Model(irVersion: 0), "ir_version 0 is not a version of the ONNX format", null);
            yield return ("duplicate-opset", Model(extra: m => m.Message(8, new ProtoBuilder().String(1, "").Int(2, 11))), "domain '' is imported twice", "opset_import[1]");
            yield return ("opset-version-zero", Model(extra: m => m.Message(8, new ProtoBuilder().String(1, "com.x"))), "opset version 0 of domain 'com.x' is not a version", "opset_import[1]");
            yield return ("duplicate-metadata", Model(extra: m => m.Message(14, Entry("a", "1")).Message(14, Entry("a", "2"))), "key 'a' is given twice", "metadata_props[1]");
        }
    }

    public static ProtoBuilder Entry(string key, string value) => new ProtoBuilder().String(1, key).String(2, value);

    private static ProtoBuilder External(params ProtoBuilder[] entries)
    {
        var t = Tensor("w", FloatType, [2], null);
        foreach (var e in entries) t.Message(13, e);
        return t.Int(14, 1);
    }

    /// <summary>A graph whose If node's then_branch nests <paramref name="levels"/> - 1 more graphs.</summary>
    public static ProtoBuilder Nested(int levels)
    {
        var inner = Graph(nodes: [Node("Neg", ["x"], ["z"], "leaf")], initializers: [], inputs: [], outputs: [ValueInfo("z")]);
        for (int k = 1; k < levels; k++)
            inner = Graph(nodes: [Node("If", ["x"], ["z"], $"if{k}", GraphAttribute("then_branch", inner))], initializers: [], inputs: k == levels - 1 ? null : [],
                outputs: [ValueInfo("z")]);
        return inner;
    }
}
