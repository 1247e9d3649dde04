using Google.Protobuf;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// ONNX messages written with <see cref="ProtoBuilder"/> and onnx.proto's field numbers: a small valid model
/// (<see cref="Model"/> of <see cref="Graph"/>: y = Add(x, w), w an initializer of two floats) whose parts the
/// malformed cases replace one at a time.
/// </summary>
public static class OnnxProtos
{
    public const int FloatType = 1, Int8Type = 3, Int64Type = 7, StringType = 8, UInt32Type = 12;

    public static readonly byte[] TwoFloats = [.. BitConverter.GetBytes(1.5f), .. BitConverter.GetBytes(2.5f)];

    public static ProtoBuilder Tensor(string name, int dataType, long[] dims, byte[]? raw) =>
        Then(new ProtoBuilder().Packed(1, dims).Int(2, dataType).String(8, name), t => { if (raw is not null) t.Bytes(9, raw); });

    public static ProtoBuilder Weight() => Tensor("w", FloatType, [2], TwoFloats);

    public static ProtoBuilder ValueInfo(string name, int elemType = FloatType, params long[] dims)
    {
        var shape = new ProtoBuilder();
        foreach (long d in dims) shape.Message(1, new ProtoBuilder().Int(1, d));
        var tensorType = new ProtoBuilder().Int(1, elemType).Message(2, shape);
        return new ProtoBuilder().String(1, name).Message(2, new ProtoBuilder().Message(1, tensorType));
    }

    public static ProtoBuilder Node(string opType, string[] inputs, string[] outputs, string name, params ProtoBuilder[] attributes)
    {
        var n = new ProtoBuilder();
        foreach (var i in inputs) n.String(1, i);
        foreach (var o in outputs) n.String(2, o);
        n.String(3, name).String(4, opType);
        foreach (var a in attributes) n.Message(5, a);
        return n;
    }

    public static ProtoBuilder IntAttribute(string name, long value) => new ProtoBuilder().String(1, name).Int(20, 2).Int(3, value);

    public static ProtoBuilder GraphAttribute(string name, ProtoBuilder graph) => new ProtoBuilder().String(1, name).Int(20, 5).Message(6, graph);

    public static ProtoBuilder AddNode() => Node("Add", ["x", "w"], ["y"], "add");

    /// <summary>A graph; each part defaults to the valid model's (pass [] for none).</summary>
    public static ProtoBuilder Graph(ProtoBuilder[]? nodes = null, ProtoBuilder[]? initializers = null, ProtoBuilder[]? inputs = null,
        ProtoBuilder[]? outputs = null, Action<ProtoBuilder>? extra = null)
    {
        var g = new ProtoBuilder();
        foreach (var n in nodes ?? [AddNode()]) g.Message(1, n);
        g.String(2, "g");
        foreach (var t in initializers ?? [Weight()]) g.Message(5, t);
        foreach (var v in inputs ?? [ValueInfo("x", FloatType, 2)]) g.Message(11, v);
        foreach (var v in outputs ?? [ValueInfo("y", FloatType, 2)]) g.Message(12, v);
        extra?.Invoke(g);
        return g;
    }

    /// <summary>ModelProto: ir_version 8, producer "test", the graph, opset 13; <paramref name="extra"/> appends fields.</summary>
    public static byte[] Model(ProtoBuilder? graph = null, Action<ProtoBuilder>? extra = null, long irVersion = 8)
    {
        var m = new ProtoBuilder().Int(1, irVersion).String(2, "test").Message(7, graph ?? Graph()).Message(8, new ProtoBuilder().Int(2, 13));
        extra?.Invoke(m);
        return m.ToArray();
    }

    /// <summary>The valid model with its initializer replaced by <paramref name="tensor"/>.</summary>
    public static byte[] WithWeight(ProtoBuilder tensor) => Model(Graph(initializers: [tensor]));

    /// <summary>Bytes of a model whose graph field is raw: a tag, then whatever <paramref name="payload"/> is.</summary>
    public static byte[] GraphField(params byte[][] payload)
    {
        var m = new ProtoBuilder().Int(1, 8).Tag(7, WireFormat.WireType.LengthDelimited);
        foreach (var p in payload) m.Raw(p);
        return m.ToArray();
    }

    private static ProtoBuilder Then(ProtoBuilder b, Action<ProtoBuilder> more)
    {
        more(b);
        return b;
    }
}
