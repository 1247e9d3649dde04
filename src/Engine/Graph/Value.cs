namespace GpuAnomaly.Engine;

/// <summary>Where a <see cref="Value"/> comes from.</summary>
public enum ValueKind
{
    /// <summary>Fed by the caller on every run.</summary>
    Input,
    /// <summary>A weight: uploaded once when the executor is created.</summary>
    Constant,
    /// <summary>Computed by a node.</summary>
    NodeOutput,
}

/// <summary>
/// A tensor in a graph: a graph input, a constant (weight) or the output of a node. Inputs and
/// node outputs are F32; a constant may also be a packed ternary weight (<see cref="DType.Ternary2"/>).
/// Its shape is known when it is created (shape inference runs as nodes are added).
/// </summary>
public sealed class Value
{
    internal Value(GraphBuilder owner, int id, string name, Shape shape, ValueKind kind, Node? producer = null)
    {
        Owner = owner;
        Id = id;
        Name = name;
        Shape = shape;
        Kind = kind;
        Producer = producer;
    }

    internal GraphBuilder Owner { get; }
    /// <summary>Index in <see cref="Graph.Values"/>; creation order.</summary>
    public int Id { get; }
    /// <summary>The input's, constant's or producing node's name.</summary>
    public string Name { get; }
    public Shape Shape { get; }
    public DType DType { get; init; } = DType.F32;
    public ValueKind Kind { get; }
    /// <summary>The node computing this value; null for inputs and constants.</summary>
    public Node? Producer { get; }

    /// <summary>Host data of a constant given as an array (null otherwise).</summary>
    internal float[]? HostData { get; init; }
    /// <summary>A constant given as a tensor (null otherwise); used in place when it lives on the executor's device.</summary>
    internal Tensor? DeviceData { get; init; }
    /// <summary>Raw host bytes of a non-F32 constant (a packed ternary weight), null otherwise.</summary>
    internal ReadOnlyMemory<byte>? HostBytes { get; init; }

    public long Bytes => DType.StorageBytes(Shape);

    public override string ToString() => DType == DType.F32 ? $"{Name} {Shape}" : $"{Name} {Shape} {DType}";
}

/// <summary>One op applied to its input values, producing one value named like the node.</summary>
public sealed class Node
{
    internal Node(int index, string name, Op op, Value[] inputs)
    {
        Index = index;
        Name = name;
        Op = op;
        Inputs = inputs;
    }

    /// <summary>Position in execution order (the builder's order is topological).</summary>
    public int Index { get; }
    public string Name { get; }
    public Op Op { get; }
    public IReadOnlyList<Value> Inputs { get; }
    public Value Output { get; internal set; } = null!;

    public override string ToString() => $"{Name} = {Op}({string.Join(", ", Inputs.Select(v => v.Name))})";
}
