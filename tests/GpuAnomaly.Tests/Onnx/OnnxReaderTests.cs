using System.Runtime.InteropServices;
using GpuAnomaly.Engine.Onnx;
using Xunit;
using static GpuAnomaly.Tests.Onnx.OnnxProtos;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>The ONNX reader on files written by torch.onnx.export and onnx's Python API, checked against what onnx reads in them.</summary>
public sealed class OnnxReaderTests
{
    public static TheoryData<string> ModelFiles() => [.. OnnxFixtures.Models];
    public static TheoryData<string> TensorFiles() => [.. OnnxFixtures.Tensors];

    [Theory]
    [MemberData(nameof(ModelFiles))]
    public void Model_MatchesOnnxPython(string file)
    {
        var model = OnnxModel.Load(OnnxFixtures.PathOf(file));
        OnnxFixtures.AssertModel(OnnxFixtures.Expected(file), model);
        Assert.Equal(OnnxFixtures.PathOf(file), model.File);
    }

    [Theory]
    [MemberData(nameof(TensorFiles))]
    public void LoneTensor_MatchesOnnxPython(string file)
    {
        var tensor = OnnxTensor.Load(OnnxFixtures.PathOf(file));
        OnnxFixtures.AssertTensor(OnnxFixtures.Expected(file), tensor);
        Assert.Equal($"tensor '{tensor.Name}'", tensor.Location);
    }

    [Fact]
    public void TinyCnn_ShapesAttributesAndOps()
    {
        var m = OnnxModel.Load(OnnxFixtures.PathOf("tiny_cnn.onnx"));
        Assert.Equal(13, m.OpsetVersion(""));
        Assert.Equal(13, m.OpsetVersion("ai.onnx"));
        Assert.Null(m.OpsetVersion("com.microsoft"));
        Assert.Equal("tiny_cnn", m.Metadata["architecture"]);
        var image = Assert.Single(m.Graph.RuntimeInputs);
        Assert.Equal("image: FLOAT [batch, 1, 8, 8]", image.ToString());
        Assert.Equal(new OnnxDim(null, "batch"), image.Shape![0]);
        Assert.Equal("[batch, 3]", m.Graph.Outputs[0].ShapeText);

        var conv = m.Graph.Nodes.Single(n => n.OpType == "Conv");
        Assert.Equal([1L, 1, 1, 1], conv.GetInts("pads"));
        Assert.Equal([3L, 3], conv.GetInts("kernel_shape"));
        Assert.Equal(1, conv.GetInt("group"));
        Assert.Equal([1L, 1], conv.GetInts("no_such", [1L, 1]));
        Assert.Equal(["image", "conv.weight", "conv.bias"], conv.Inputs);
        Assert.True(m.Graph.TryGetInitializer("conv.weight", out var w));
        Assert.Equal([4L, 1, 3, 3], w.Dims);
        Assert.Equal(36 * 4, w.ByteLength);
        Assert.Equal(m.Graph.Nodes, m.Graph.TopologicalOrder());
        Assert.Equal((4 * 9 + 4 + 3 * 64 + 3, 4L * (4 * 9 + 4 + 3 * 64 + 3)), m.Graph.InitializerSize());

        Assert.Equal([new OnnxOpCount("Conv", 1), new("Flatten", 1), new("Gemm", 1), new("MaxPool", 1), new("Relu", 1)], m.OpCounts());
        Assert.Equal([new OnnxOpCount("Flatten", 1), new("MaxPool", 1)],
            m.UnsupportedOps(new HashSet<string>(StringComparer.Ordinal) { "Conv", "Relu", "Gemm" }));
    }

    [Fact]
    public void ExternalData_IsReadFromItsFile_AndEqualsTheInlineModel()
    {
        var inline = OnnxModel.Load(OnnxFixtures.PathOf("tiny_cnn.onnx"));
        var external = OnnxModel.Load(OnnxFixtures.PathOf("tiny_cnn_external.onnx"));
        long offset = -1;
        foreach (var t in external.Graph.Initializers)
        {
            Assert.Equal(OnnxTensorStorage.External, t.Storage);
            Assert.Equal("tiny_cnn_external.data", t.External!.Location);
            Assert.Equal(OnnxFixtures.PathOf("tiny_cnn_external.data"), t.External.FullPath);
            Assert.Equal(t.ByteLength, t.External.Length);
            Assert.True(t.External.Offset > offset);
            offset = t.External.Offset;
            Assert.True(inline.Graph.TryGetInitializer(t.Name, out var same));
            Assert.Equal(same.ToFloatArray(), t.ToFloatArray());
            Assert.Equal(same.RawData().ToArray(), t.RawData().ToArray());
        }

        // From memory: with the directory the data is found; without one it is refused, naming the tensor.
        var bytes = File.ReadAllBytes(OnnxFixtures.PathOf("tiny_cnn_external.onnx"));
        Assert.Equal(inline.Graph.Initializers[0].ToFloatArray(), OnnxModel.Parse(bytes, "mem.onnx", OnnxFixtures.Dir).Graph.Initializers[0].ToFloatArray());
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Parse(bytes, "mem.onnx", null));
        Assert.Equal("graph.initializer[0] 'conv.weight'", e.Location);
        Assert.Contains("parsed from memory without a directory", e.Message);
        Assert.StartsWith("mem.onnx: graph.initializer[0] 'conv.weight': external data file 'tiny_cnn_external.data'", e.Message);
    }

    [Fact]
    public void RawData_IsASliceOfTheCallersBuffer()
    {
        var bytes = File.ReadAllBytes(OnnxFixtures.PathOf("tiny_cnn.onnx"));
        var m = OnnxModel.Parse(bytes, "tiny_cnn.onnx", null);
        foreach (var t in m.Graph.Initializers)
        {
            Assert.Equal(OnnxTensorStorage.Raw, t.Storage);
            Assert.True(MemoryMarshal.TryGetArray(t.RawData(), out var segment));
            Assert.Same(bytes, segment.Array);
        }
        // A slice of a larger array works the same (offsets inside the buffer are absolute).
        var padded = new byte[bytes.Length + 10];
        bytes.CopyTo(padded, 7);
        var sliced = OnnxModel.Parse(padded.AsMemory(7, bytes.Length), "sliced", null);
        Assert.Equal(m.Graph.Initializers[2].ToFloatArray(), sliced.Graph.Initializers[2].ToFloatArray());
    }

    [Fact]
    public void TypedFields_ConvertExactly_AndRefuseWrongTypes()
    {
        var m = OnnxModel.Load(OnnxFixtures.PathOf("typed.onnx"));
        OnnxTensor Init(string name) => m.Graph.Initializers.Single(t => t.Name == name);
        Assert.All(m.Graph.Initializers.Where(t => t.Name != "w_raw"), t => Assert.Equal(OnnxTensorStorage.Typed, t.Storage));

        Assert.Equal([3L, -7, 1L << 40, -(1L << 50)], Init("w_int64").ToInt64Array());
        Assert.Equal([5, -6, int.MaxValue, int.MinValue], Init("w_int32").ToInt32Array());
        Assert.Equal([(sbyte)-128, 1, 127], Init("w_int8").ToSByteArray());
        Assert.Equal([-128L, 1, 127], Init("w_int8").ToInt64Array());
        Assert.Equal([true, false, true], Init("w_bool").ToBoolArray());
        Assert.Equal([(Half)1.5, (Half)(-2.25), Half.MaxValue], Init("w_half").ToHalfArray());
        Assert.Equal([1.5f, -2.25f, 65504f], Init("w_half").ToFloatArray());
        Assert.Equal([Math.PI, -1e300], Init("w_double").ToDoubleArray());
        Assert.Equal(["anomaly", "na\u00efve"], Init("w_string").ToStringArray());
        // Typed data encoded to raw layout equals what the floats are.
        Assert.Equal(MemoryMarshal.AsBytes(Init("w_float").ToFloatArray().AsSpan()).ToArray(), Init("w_float").RawData().ToArray());

        var e = Assert.Throws<OnnxFormatException>(() => Init("w_int64").ToFloatArray());
        Assert.Equal("graph.initializer[1] 'w_int64'", e.Location);
        Assert.Contains("is INT64; ToFloatArray reads FLOAT, FLOAT16 or BFLOAT16", e.Message);
        Assert.Contains("element 2 is 1099511627776, out of the int32 range", Assert.Throws<OnnxFormatException>(() => Init("w_int64").ToInt32Array()).Message);
        Assert.Contains("element 1 is 18446744073709551615, above the int64 range", Assert.Throws<OnnxFormatException>(() => Init("w_uint64").ToInt64Array()).Message);
        Assert.Contains("is DOUBLE; ToFloatArray", Assert.Throws<OnnxFormatException>(() => Init("w_double").ToFloatArray()).Message);
        Assert.Contains("is STRING; RawData", Assert.Throws<OnnxFormatException>(() => Init("w_string").RawData()).Message);
        Assert.Contains("is FLOAT; ToBoolArray reads BOOL", Assert.Throws<OnnxFormatException>(() => Init("w_float").ToBoolArray()).Message);

        Assert.True(m.Graph.TryGetValueInfo("S", out var s));
        Assert.Equal("[2, ?]", s.ShapeText);
        Assert.Null(m.Graph.Outputs[1].Shape);
        Assert.Equal("purpose", Assert.Single(m.Metadata).Key);
    }

    [Fact]
    public void Attributes_TypedGettersDefaultsAndErrors()
    {
        var m = OnnxModel.Load(OnnxFixtures.PathOf("typed.onnx"));
        var n = m.Graph.Nodes.Single(x => x.Name == "every_attribute");
        Assert.Equal("gpuanomaly.test.Everything", n.QualifiedOpType);
        Assert.Equal(["X", "", "w_raw"], n.Inputs);
        Assert.Equal(0.25f, n.GetFloat("f"));
        Assert.Equal(-42, n.GetInt("i"));
        Assert.Equal("hello", n.GetString("s"));
        Assert.Equal([9L, -9], n.GetTensor("t").ToInt64Array());
        Assert.Equal("Identity", Assert.Single(n.GetGraph("g").Nodes).OpType);
        Assert.Equal([1.5f, -2.5f, 3f], n.GetFloats("floats"));
        Assert.Equal([1L, -2, 1L << 35], n.GetInts("ints"));
        Assert.Equal(["a", "bc"], n.GetStrings("strings"));
        Assert.Equal([2.5f], n.Attribute("tensors").AsTensors()[0].ToFloatArray());
        Assert.Equal(2, n.Attribute("graphs").AsGraphs().Count);
        Assert.Equal(3, n.Subgraphs.Count());
        Assert.Equal(7, n.GetInt("absent", 7));
        Assert.Equal("x", n.GetString("absent", "x"));

        var e = Assert.Throws<OnnxFormatException>(() => n.GetInts("f"));
        Assert.Equal("graph.node[3] 'every_attribute' attribute 'f'", e.Location);
        Assert.EndsWith("graph.node[3] 'every_attribute' attribute 'f': is FLOAT, expected INTS", e.Message);
        Assert.Contains("is INTS, expected INT", Assert.Throws<OnnxFormatException>(() => n.GetInt("ints", 0)).Message);
        var missing = Assert.Throws<OnnxFormatException>(() => n.GetInt("axis"));
        Assert.Contains("Everything node has no attribute 'axis', which it needs", missing.Message);

        var constant = m.Graph.Nodes.Single(x => x.OpType == "Constant");
        Assert.Equal(OnnxAttributeType.Tensor, constant.Attribute("value").Type);
        Assert.Equal("graph.node[0] 'const' attribute 'value' 'c'", constant.GetTensor("value").Location);
        Assert.Equal([new OnnxOpCount("Identity", 3), new("Add", 1), new("Constant", 1), new("Mul", 1), new("gpuanomaly.test.Everything", 1)], m.OpCounts());
    }

    [Fact]
    public void Subgraphs_ReadOuterValues_AsImplicitInputs()
    {
        var m = OnnxModel.Load(OnnxFixtures.PathOf("subgraph.onnx"));
        var ifNode = m.Graph.Nodes.Single(n => n.OpType == "If");
        Assert.Equal(["X", "scale"], ifNode.ImplicitInputs);
        Assert.Equal("graph.node[1] 'if' attribute 'then_branch'", ifNode.GetGraph("then_branch").Location);
        Assert.Equal("graph.node[1] 'if' attribute 'then_branch'.node[0] 'then_mul'", ifNode.GetGraph("then_branch").Nodes[0].Location);
        var loop = m.Graph.Nodes.Single(n => n.OpType == "Loop");
        Assert.Equal(["trip", "", "Y"], loop.Inputs);
        Assert.Equal(["I"], loop.ImplicitInputs);
        Assert.Empty(m.Graph.Nodes[0].ImplicitInputs);
        Assert.Equal(7, m.Graph.AllNodes().Count());
        Assert.Equal(["abs", "if", "loop"], m.Graph.TopologicalOrder().Select(n => n.Name));
        Assert.Equal([new OnnxOpCount("Abs", 1), new("Add", 1), new("Identity", 1), new("If", 1), new("Loop", 1), new("Mul", 1), new("Neg", 1)], m.OpCounts());
        Assert.Equal(["X", "cond"], m.Graph.RuntimeInputs.Select(v => v.Name));
    }

    [Fact]
    public void UnsortedNodes_GetADependencyOrder_FileOrderKept()
    {
        // y = Neg(Relu(Abs(x)) + w), the nodes written last to first; an independent node stays where it was.
        var graph = Graph(nodes: [Node("Neg", ["s"], ["y"], "neg"), Node("Add", ["r", "w"], ["s"], "add"), Node("Relu", ["a"], ["r"], "relu"),
            Node("Sigmoid", ["x"], ["unused"], "side"), Node("Abs", ["x"], ["a"], "abs")]);
        var m = OnnxModel.Parse(Model(graph), "unsorted", null);
        Assert.Equal(["neg", "add", "relu", "side", "abs"], m.Graph.Nodes.Select(n => n.Name));
        Assert.Equal(["side", "abs", "relu", "add", "neg"], m.Graph.TopologicalOrder().Select(n => n.Name));
    }

    [Fact]
    public void SubgraphsNested16Deep_AreRead()
    {
        var m = OnnxModel.Parse(Model(MalformedOnnx.Nested(OnnxModel.MaxSubgraphDepth + 1)), "nested", null);
        Assert.Equal(OnnxModel.MaxSubgraphDepth + 1, m.Graph.AllNodes().Count());
        Assert.Equal(["x"], m.Graph.Nodes[0].ImplicitInputs);
    }

    [Fact]
    public void UnknownFields_AreSkipped_PackedAndUnpackedAgree()
    {
        var plain = OnnxModel.Parse(Model(), "plain", null);
        // Unknown fields of every wire type (a group too) in each message, dims unpacked.
        var unknown = new ProtoBuilder().Int(99, 5).Float(98, 1.5f).String(97, "later").Tag(96, Google.Protobuf.WireFormat.WireType.StartGroup)
            .Int(1, 3).Tag(96, Google.Protobuf.WireFormat.WireType.EndGroup).Tag(95, Google.Protobuf.WireFormat.WireType.Fixed64).Raw(new byte[8]);
        ProtoBuilder With(ProtoBuilder b) => b.Raw(unknown.ToArray());
        var weight = With(new ProtoBuilder().Int(1, 2).Int(2, FloatType).String(8, "w").Bytes(9, TwoFloats));
        var graph = With(Graph(nodes: [With(AddNode())], initializers: [weight], inputs: [With(ValueInfo("x", FloatType, 2))]));
        var m = OnnxModel.Parse(Model(graph, extra: mb => With(mb)), "unknown", null);
        Assert.Equal(plain.Graph.Initializers[0].Dims, m.Graph.Initializers[0].Dims);
        Assert.Equal([1.5f, 2.5f], m.Graph.Initializers[0].ToFloatArray());
        Assert.Equal("Add", m.Graph.Nodes[0].OpType);
        Assert.Equal(plain.Graph.Inputs[0].ToString(), m.Graph.Inputs[0].ToString());
    }

    [Fact]
    public void TypedFloatData_PackedAndUnpacked()
    {
        var packed = Tensor("w", FloatType, [2], null).Bytes(4, TwoFloats);
        var unpacked = Tensor("w", FloatType, [2], null).Float(4, 1.5f).Float(4, 2.5f);
        foreach (var t in new[] { packed, unpacked })
            Assert.Equal([1.5f, 2.5f], OnnxModel.Parse(WithWeight(t), "typed", null).Graph.Initializers[0].ToFloatArray());
    }

    [Fact]
    public void EmptyTensor_AndAttributeWithoutType()
    {
        var empty = OnnxModel.Parse(Model(Graph(initializers: [Weight(), Tensor("e", FloatType, [3, 0], null)])), "empty", null).Graph.Initializers[1];
        Assert.Equal(OnnxTensorStorage.Empty, empty.Storage);
        Assert.Empty(empty.ToFloatArray());
        // IR version 1 files give attributes no type: it is the kind of value present.
        var node = Node("Add", ["x", "w"], ["y"], "add", new ProtoBuilder().String(1, "axis").Int(3, -3));
        Assert.Equal(-3, OnnxModel.Parse(Model(Graph(nodes: [node])), "old", null).Graph.Nodes[0].GetInt("axis"));
    }

    [Fact]
    public void Load_MissingFileAndDirectory()
    {
        Assert.EndsWith("no such file", Assert.Throws<OnnxFormatException>(() => OnnxModel.Load("/nonexistent/m.onnx")).Message);
        Assert.Contains("is a directory", Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(OnnxFixtures.Dir)).Message);
        Assert.Contains("no such file", Assert.Throws<OnnxFormatException>(() => OnnxTensor.Load("/nonexistent/input_0.pb")).Message);
        // A device reports length 0 and never ends: refused, not read until memory runs out.
        if (File.Exists("/dev/zero"))
            Assert.Contains("holds more than the 0 bytes its size says", Assert.Throws<OnnxFormatException>(() => OnnxModel.Load("/dev/zero")).Message);
    }

    [Fact]
    public void LoneTensorParse_NamesTheTensor()
    {
        var bytes = new ProtoBuilder().Packed(1, 3).Int(2, FloatType).String(8, "input_0").Bytes(9, TwoFloats).ToArray();
        var e = Assert.Throws<OnnxFormatException>(() => OnnxTensor.Parse(bytes, "input_0.pb"));
        Assert.Equal("input_0.pb: tensor 'input_0': raw_data holds 8 bytes but FLOAT [3] needs 12", e.Message);
        Assert.Contains("is a PNG image, not an ONNX tensor", Assert.Throws<OnnxFormatException>(() => OnnxTensor.Parse(MalformedOnnx.Cases.First(c => c.Name == "png").Bytes, "x.pb")).Message);
    }
}
