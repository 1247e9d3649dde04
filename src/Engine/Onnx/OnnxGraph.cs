namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// A GraphProto: the model's main graph or a subgraph (an If branch, a Loop body). Lists keep file order. When the
/// model was read, every name a node or graph output reads was found (in this graph or, for subgraphs, an enclosing
/// one), no value was produced twice, and an order without cycles was found: <see cref="TopologicalOrder"/>.
/// </summary>
public sealed partial class OnnxGraph
{
    private readonly Dictionary<string, OnnxTensor> _initializers;
    private IReadOnlyList<OnnxNode> _order = [];

    internal OnnxGraph(string file, string location, string name, IReadOnlyList<OnnxNode> nodes, IReadOnlyList<OnnxTensor> initializers,
        IReadOnlyList<OnnxValueInfo> inputs, IReadOnlyList<OnnxValueInfo> outputs, IReadOnlyList<OnnxValueInfo> valueInfo)
    {
        File = file;
        Location = location;
        Name = name;
        Nodes = nodes;
        Initializers = initializers;
        Inputs = inputs;
        Outputs = outputs;
        ValueInfo = valueInfo;
        _initializers = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        foreach (var t in initializers) _initializers.TryAdd(t.Name, t); // duplicates are refused by Validate
        RuntimeInputs = inputs.Where(i => !_initializers.ContainsKey(i.Name)).ToArray();
    }

    public string File { get; }

    /// <summary>Where in the file: <c>graph</c>, or e.g. <c>graph.node[4] 'If_0' attribute 'then_branch'</c>.</summary>
    public string Location { get; }

    public string Name { get; }

    /// <summary>The nodes in file order (see <see cref="TopologicalOrder"/> for an order to run them in).</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    public IReadOnlyList<OnnxTensor> Initializers { get; }

    /// <summary>The graph inputs as declared; before IR version 4 these include the initializers.</summary>
    public IReadOnlyList<OnnxValueInfo> Inputs { get; }

    /// <summary>The inputs a caller must feed: <see cref="Inputs"/> without the names of initializers.</summary>
    public IReadOnlyList<OnnxValueInfo> RuntimeInputs { get; }

    public IReadOnlyList<OnnxValueInfo> Outputs { get; }

    /// <summary>value_info: types and shapes of intermediate values, where the exporter wrote them.</summary>
    public IReadOnlyList<OnnxValueInfo> ValueInfo { get; }

    /// <summary>
    /// The nodes in an order where each runs after the producers of its inputs (implicit ones included), computed
    /// when the model was read: file order where the file is sorted (as ONNX requires), else the earliest node
    /// first among those ready.
    /// </summary>
    public IReadOnlyList<OnnxNode> TopologicalOrder() => _order;

    public bool TryGetInitializer(string name, out OnnxTensor tensor) => _initializers.TryGetValue(name, out tensor!);

    /// <summary>The type of a value from the graph's inputs, outputs or value_info, where the file gives one.</summary>
    public bool TryGetValueInfo(string name, out OnnxValueInfo info)
    {
        info = Inputs.FirstOrDefault(v => v.Name == name) ?? Outputs.FirstOrDefault(v => v.Name == name) ?? ValueInfo.FirstOrDefault(v => v.Name == name)!;
        return info is not null;
    }

    /// <summary>This graph's nodes and those of its subgraphs, depth first (a node before its subgraphs' nodes).</summary>
    public IEnumerable<OnnxNode> AllNodes()
    {
        foreach (var node in Nodes)
        {
            yield return node;
            foreach (var sub in node.Subgraphs)
                foreach (var inner in sub.AllNodes())
                    yield return inner;
        }
    }

    /// <summary>Elements and bytes of the initializers (STRING tensors count their elements only).</summary>
    public (long Elements, long Bytes) InitializerSize() =>
        (Initializers.Sum(t => t.ElementCount), Initializers.Sum(t => t.ByteLength));

    public override string ToString() => $"{Location} '{Name}': {Nodes.Count} nodes, {Initializers.Count} initializers";
}
