namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// A NodeProto. <see cref="Inputs"/> keeps ONNX's positions: an empty string is an optional input left out (e.g.
/// Clip's min), so input k is always <c>Inputs[k]</c>. Attribute getters with a default return it when the attribute
/// is absent; without one they require it; both throw an <see cref="OnnxFormatException"/> naming the node and the
/// attribute when the attribute has another type.
/// </summary>
public sealed class OnnxNode
{
    private readonly Dictionary<string, OnnxAttribute> _attributes;

    internal OnnxNode(string file, string location, int index, string name, string opType, string domain,
        IReadOnlyList<string> inputs, IReadOnlyList<string> outputs, Dictionary<string, OnnxAttribute> attributes)
    {
        File = file;
        Location = location;
        Index = index;
        Name = name;
        OpType = opType;
        Domain = domain;
        Inputs = inputs;
        Outputs = outputs;
        _attributes = attributes;
    }

    public string File { get; }

    /// <summary>Where in the file, e.g. <c>graph.node[12] 'conv1'</c>.</summary>
    public string Location { get; }

    /// <summary>The node's position in its graph's node list (file order).</summary>
    public int Index { get; }

    /// <summary>The node's name; may be empty (ONNX does not require names).</summary>
    public string Name { get; }

    public string OpType { get; }

    /// <summary>The operator set domain: "" (or "ai.onnx") for the standard operators.</summary>
    public string Domain { get; }

    /// <summary><see cref="OpType"/> for the standard domain, <c>domain.OpType</c> otherwise (e.g. <c>com.microsoft.FusedConv</c>).</summary>
    public string QualifiedOpType => Domain is "" or "ai.onnx" ? OpType : $"{Domain}.{OpType}";

    /// <summary>Value names read, by position; "" for an omitted optional input.</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>Value names written, by position; "" for an omitted optional output.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>
    /// Values of enclosing graphs that the node's subgraphs (If branches, Loop and Scan bodies) read: inputs the node
    /// has without listing them, which must be computed before it runs. Sorted; empty for nodes without subgraphs.
    /// </summary>
    public IReadOnlyList<string> ImplicitInputs { get; internal set; } = [];

    public IReadOnlyDictionary<string, OnnxAttribute> Attributes => _attributes;

    /// <summary>The subgraphs of the node's GRAPH and GRAPHS attributes.</summary>
    public IEnumerable<OnnxGraph> Subgraphs => _attributes.Values.SelectMany(a => a.Subgraphs);

    public bool HasAttribute(string name) => _attributes.ContainsKey(name);

    public bool TryGetAttribute(string name, out OnnxAttribute attribute) => _attributes.TryGetValue(name, out attribute!);

    /// <summary>The attribute named <paramref name="name"/>; an <see cref="OnnxFormatException"/> when the node has none.</summary>
    public OnnxAttribute Attribute(string name) =>
        _attributes.TryGetValue(name, out var a)
            ? a
            : throw new OnnxFormatException(File, Location, $"{OpType} node has no attribute {OnnxFormatException.Quote(name)}, which it needs" +
                                                            (_attributes.Count == 0 ? "" : $" (it has {string.Join(", ", _attributes.Keys.Select(OnnxFormatException.Quote))})"));

    public long GetInt(string name) => Attribute(name).AsInt();
    public long GetInt(string name, long defaultValue) => TryGetAttribute(name, out var a) ? a.AsInt() : defaultValue;

    public float GetFloat(string name) => Attribute(name).AsFloat();
    public float GetFloat(string name, float defaultValue) => TryGetAttribute(name, out var a) ? a.AsFloat() : defaultValue;

    public string GetString(string name) => Attribute(name).AsString();
    public string GetString(string name, string defaultValue) => TryGetAttribute(name, out var a) ? a.AsString() : defaultValue;

    public IReadOnlyList<long> GetInts(string name) => Attribute(name).AsInts();
    public IReadOnlyList<long> GetInts(string name, IReadOnlyList<long> defaultValue) => TryGetAttribute(name, out var a) ? a.AsInts() : defaultValue;

    public IReadOnlyList<float> GetFloats(string name) => Attribute(name).AsFloats();
    public IReadOnlyList<float> GetFloats(string name, IReadOnlyList<float> defaultValue) => TryGetAttribute(name, out var a) ? a.AsFloats() : defaultValue;

    public IReadOnlyList<string> GetStrings(string name) => Attribute(name).AsStrings();
    public IReadOnlyList<string> GetStrings(string name, IReadOnlyList<string> defaultValue) => TryGetAttribute(name, out var a) ? a.AsStrings() : defaultValue;

    public OnnxTensor GetTensor(string name) => Attribute(name).AsTensor();

    public OnnxGraph GetGraph(string name) => Attribute(name).AsGraph();

    /// <summary>E.g. <c>graph.node[3] 'conv1': Conv(x, w, b) -> (y)</c>.</summary>
    public override string ToString() => $"{Location}: {QualifiedOpType}({string.Join(", ", Inputs)}) -> ({string.Join(", ", Outputs)})";
}
