namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// Choices made when a model is imported: the engine's graphs have static shapes, so symbolic dims get values here
/// (the model is re-imported per batch size), and non-float inputs are bound as constants.
/// </summary>
public sealed class OnnxImportOptions
{
    /// <summary>The value of a symbolic or unknown first dim of an input (the batch) when <see cref="Dims"/> does not name it.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Values of symbolic dims by their name ("batch", "seq").</summary>
    public IReadOnlyDictionary<string, int> Dims { get; init; } = new Dictionary<string, int>();

    /// <summary>Exact input shapes (from the data a caller holds); each must agree with the model's known dims.</summary>
    public IReadOnlyDictionary<string, int[]> InputShapes { get; init; } = new Dictionary<string, int[]>();

    /// <summary>Inputs bound at load time (required for int64 / bool inputs: runtime values are float32); they fold.</summary>
    public IReadOnlyDictionary<string, HostTensor> ConstantInputs { get; init; } = new Dictionary<string, HostTensor>();
}

/// <summary>A graph output of an imported model: its ONNX element type, and its value when it folded at import.</summary>
public sealed record OnnxImportedOutput(string Name, OnnxDataType ElementType, Shape Shape, HostTensor? Constant);

/// <summary>
/// An imported model: the engine graph (null when every output folded at import) with inputs and outputs named as in
/// the ONNX file, and per output its ONNX type so that a caller writes it back as such.
/// </summary>
public sealed record OnnxImportedModel(Graph? Graph, IReadOnlyList<OnnxImportedOutput> Outputs, IReadOnlyList<KeyValuePair<string, Shape>> Inputs);

/// <summary>Op types the importer does not handle, each with its node count, listed all at once before anything is built.</summary>
public sealed class OnnxUnsupportedException(string file, IReadOnlyList<OnnxOpCount> ops)
    : GpuAnomalyException($"{file}: unsupported ONNX ops: {string.Join(", ", ops.Select(o => $"{o.OpType} ({o.Count})"))}")
{
    public IReadOnlyList<OnnxOpCount> Ops { get; } = ops;
}

/// <summary>A supported op used in a way the importer cannot map (a runtime shape input, an attribute value); names the node.</summary>
public sealed class OnnxImportException(string file, string? location, string problem, string? needsKnown = null)
    : GpuAnomalyException($"{file}: {location ?? "model"}: {problem}")
{
    public string Problem { get; } = problem;
    /// <summary>The value that must be known at import when that is the problem (a caller holding it may bind it and retry).</summary>
    public string? NeedsKnown { get; } = needsKnown;
}
