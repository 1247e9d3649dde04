using System.Text;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>AttributeProto.AttributeType, with onnx.proto's numbers.</summary>
public enum OnnxAttributeType
{
    Undefined = 0,
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Graph = 5,
    Floats = 6,
    Ints = 7,
    Strings = 8,
    Tensors = 9,
    Graphs = 10,
    SparseTensor = 11,
    SparseTensors = 12,
    TypeProto = 13,
    TypeProtos = 14,
}

/// <summary>
/// A node's attribute: one value of <see cref="Type"/>. The <c>As...</c> getters return it when the type matches and
/// throw an <see cref="OnnxFormatException"/> naming the attribute otherwise (a model that gives <c>pads</c> as
/// floats is a bad model, not a bug in the importer). Sparse tensors and type protos are kept as their type only:
/// the reader does not decode them.
/// </summary>
public sealed class OnnxAttribute
{
    private readonly object? _value;

    internal OnnxAttribute(string file, string location, string name, OnnxAttributeType type, object? value)
    {
        File = file;
        Location = location;
        Name = name;
        Type = type;
        _value = value;
    }

    public string File { get; }

    /// <summary>Where in the file, e.g. <c>graph.node[12] 'conv1' attribute 'pads'</c>.</summary>
    public string Location { get; }

    public string Name { get; }

    public OnnxAttributeType Type { get; }

    public float AsFloat() => Get<float>(OnnxAttributeType.Float);

    public long AsInt() => Get<long>(OnnxAttributeType.Int);

    /// <summary>A STRING attribute decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    public string AsString() => Encoding.UTF8.GetString(AsBytes().Span);

    /// <summary>A STRING attribute's bytes as stored (ONNX strings are bytes).</summary>
    public ReadOnlyMemory<byte> AsBytes() => Get<ReadOnlyMemory<byte>>(OnnxAttributeType.String);

    public OnnxTensor AsTensor() => Get<OnnxTensor>(OnnxAttributeType.Tensor);

    public OnnxGraph AsGraph() => Get<OnnxGraph>(OnnxAttributeType.Graph);

    public IReadOnlyList<float> AsFloats() => Get<IReadOnlyList<float>>(OnnxAttributeType.Floats);

    public IReadOnlyList<long> AsInts() => Get<IReadOnlyList<long>>(OnnxAttributeType.Ints);

    public IReadOnlyList<string> AsStrings() =>
        Get<IReadOnlyList<ReadOnlyMemory<byte>>>(OnnxAttributeType.Strings).Select(s => Encoding.UTF8.GetString(s.Span)).ToArray();

    public IReadOnlyList<OnnxTensor> AsTensors() => Get<IReadOnlyList<OnnxTensor>>(OnnxAttributeType.Tensors);

    public IReadOnlyList<OnnxGraph> AsGraphs() => Get<IReadOnlyList<OnnxGraph>>(OnnxAttributeType.Graphs);

    /// <summary>The subgraphs of a GRAPH or GRAPHS attribute; empty for the other types.</summary>
    public IReadOnlyList<OnnxGraph> Subgraphs => _value switch
    {
        OnnxGraph g => [g],
        IReadOnlyList<OnnxGraph> gs => gs,
        _ => [],
    };

    private T Get<T>(OnnxAttributeType expected)
    {
        if (Type != expected || _value is not T value)
            throw new OnnxFormatException(File, Location, $"is {TypeName(Type)}, expected {TypeName(expected)}");
        return value;
    }

    /// <summary>onnx.proto's name of an attribute type: FLOAT, INTS, ...</summary>
    public static string TypeName(OnnxAttributeType t) => t switch
    {
        OnnxAttributeType.SparseTensor => "SPARSE_TENSOR",
        OnnxAttributeType.SparseTensors => "SPARSE_TENSORS",
        OnnxAttributeType.TypeProto => "TYPE_PROTO",
        OnnxAttributeType.TypeProtos => "TYPE_PROTOS",
        _ => t.ToString().ToUpperInvariant(),
    };

    /// <summary>E.g. <c>pads: INTS [1, 1, 1, 1]</c>.</summary>
    public override string ToString() => $"{Name}: {TypeName(Type)} " + _value switch
    {
        IReadOnlyList<float> f => $"[{string.Join(", ", f)}]",
        IReadOnlyList<long> l => $"[{string.Join(", ", l)}]",
        ReadOnlyMemory<byte> => $"'{AsString()}'",
        IReadOnlyList<ReadOnlyMemory<byte>> => $"[{string.Join(", ", AsStrings().Select(s => $"'{s}'"))}]",
        IReadOnlyList<OnnxTensor> t => $"{t.Count} tensors",
        IReadOnlyList<OnnxGraph> g => $"{g.Count} graphs",
        null => "(not decoded)",
        var v => v.ToString(),
    };
}
