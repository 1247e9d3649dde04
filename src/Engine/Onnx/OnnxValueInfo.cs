namespace GpuAnomaly.Engine.Onnx;

/// <summary>What a TypeProto describes; the reader looks inside Tensor and SparseTensor types only.</summary>
public enum OnnxValueKind
{
    /// <summary>The ValueInfoProto has no type.</summary>
    Unknown,
    Tensor,
    SparseTensor,
    Sequence,
    Map,
    Optional,
    Opaque,
}

/// <summary>One dimension of a value's shape: a number (dim_value), a symbol (dim_param, e.g. "batch"), or neither (unknown).</summary>
public readonly record struct OnnxDim(long? Value, string? Symbol)
{
    public bool IsKnown => Value is not null;

    /// <summary>The number, the symbol, or "?".</summary>
    public override string ToString() => Value?.ToString() ?? Symbol ?? "?";
}

/// <summary>
/// A ValueInfoProto: a graph input, output or value_info entry. For tensors, <see cref="Shape"/> is null when the
/// file gives no shape (rank unknown); otherwise each dim is a number, a symbol or unknown.
/// </summary>
public sealed class OnnxValueInfo
{
    internal OnnxValueInfo(string location, string name, OnnxValueKind kind, OnnxDataType elementType, IReadOnlyList<OnnxDim>? shape)
    {
        Location = location;
        Name = name;
        Kind = kind;
        ElementType = elementType;
        Shape = shape;
    }

    /// <summary>Where in the file, e.g. <c>graph.input[0] 'image'</c>.</summary>
    public string Location { get; }

    public string Name { get; }

    public OnnxValueKind Kind { get; }

    /// <summary>The element type of a tensor (Undefined when the file leaves it out, and for other kinds).</summary>
    public OnnxDataType ElementType { get; }

    /// <summary>The tensor's dims, or null when the rank is unknown.</summary>
    public IReadOnlyList<OnnxDim>? Shape { get; }

    /// <summary>The shape as text: <c>[batch, 3, 28, 28]</c>, or <c>?</c> for an unknown rank.</summary>
    public string ShapeText => Shape is null ? "?" : $"[{string.Join(", ", Shape)}]";

    /// <summary>E.g. <c>image: FLOAT [batch, 3, 28, 28]</c>.</summary>
    public override string ToString() => Kind switch
    {
        OnnxValueKind.Tensor or OnnxValueKind.SparseTensor => $"{Name}: {(Kind == OnnxValueKind.SparseTensor ? "sparse " : "")}{ElementType.ProtoName()} {ShapeText}",
        _ => $"{Name}: {Kind.ToString().ToLowerInvariant()}",
    };
}
