namespace GpuAnomaly.Engine.Onnx;

/// <summary>An op type and how many nodes use it (subgraphs included).</summary>
public readonly record struct OnnxOpCount(string OpType, int Count);

/// <summary>
/// An ONNX ModelProto, read and checked by <see cref="Load"/> or <see cref="Parse"/> (see docs/ONNX.md): the
/// protobuf is parsed by hand with onnx.proto's field numbers (unknown fields skipped, known fields of the wrong wire
/// type refused), every tensor's dims, type and data size are checked, external data must lie inside the model's
/// directory, and the graph's names and order are checked (<see cref="OnnxGraph"/>). Anything wrong is an
/// <see cref="OnnxFormatException"/> naming the file, where in it, and what; no other exception escapes for any input.
/// The result is immutable; initializer data stays in the file's buffer until converted.
/// </summary>
public sealed class OnnxModel
{
    /// <summary>Subgraphs (attributes of type GRAPH / GRAPHS) may nest this deep; deeper is refused.</summary>
    public const int MaxSubgraphDepth = 16;

    internal OnnxModel(string file, string? baseDirectory, long irVersion, string producerName, string producerVersion, string domain,
        long modelVersion, string docString, IReadOnlyDictionary<string, long> opsets, IReadOnlyDictionary<string, string> metadata, OnnxGraph graph)
    {
        File = file;
        BaseDirectory = baseDirectory;
        IrVersion = irVersion;
        ProducerName = producerName;
        ProducerVersion = producerVersion;
        Domain = domain;
        ModelVersion = modelVersion;
        DocString = docString;
        Opsets = opsets;
        Metadata = metadata;
        Graph = graph;
    }

    /// <summary>The path it was loaded from, or the display name given to <see cref="Parse"/>.</summary>
    public string File { get; }

    /// <summary>Where external data files were looked up; null when none could be.</summary>
    public string? BaseDirectory { get; }

    public long IrVersion { get; }
    public string ProducerName { get; }
    public string ProducerVersion { get; }
    public string Domain { get; }
    public long ModelVersion { get; }
    public string DocString { get; }

    /// <summary>opset_import: domain ("" for the standard operators) to version.</summary>
    public IReadOnlyDictionary<string, long> Opsets { get; }

    /// <summary>metadata_props: key to value.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public OnnxGraph Graph { get; }

    /// <summary>The opset version of <paramref name="domain"/>; "" and "ai.onnx" name the same domain. Null when not imported.</summary>
    public long? OpsetVersion(string domain)
    {
        if (Opsets.TryGetValue(domain, out long v)) return v;
        if (domain is "" or "ai.onnx" && Opsets.TryGetValue(domain == "" ? "ai.onnx" : "", out v)) return v;
        return null;
    }

    /// <summary>Reads and checks the model at <paramref name="path"/>; external data is looked up in its directory.</summary>
    public static OnnxModel Load(string path)
    {
        var (buffer, baseDirectory) = OnnxFile.Read(path);
        return Parse(buffer, path, baseDirectory);
    }

    /// <summary>
    /// Parses and checks a serialized ModelProto. <paramref name="displayName"/> names it in errors;
    /// <paramref name="baseDirectory"/> is where external data files are looked up (null: a model with external data is
    /// refused). The model keeps a reference to <paramref name="bytes"/> when they are an array: raw_data is not copied.
    /// </summary>
    public static OnnxModel Parse(ReadOnlyMemory<byte> bytes, string displayName, string? baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(displayName);
        var root = OnnxFile.Root(bytes, displayName, "model", "an ONNX model");
        var model = new OnnxReader(displayName, baseDirectory).ReadModel(root);
        model.Graph.Validate(null);
        return model;
    }

    /// <summary>Every op type used, with its node count (subgraphs included), most used first, then by name.</summary>
    public IReadOnlyList<OnnxOpCount> OpCounts() =>
        Graph.AllNodes().GroupBy(n => n.QualifiedOpType, StringComparer.Ordinal)
            .Select(g => new OnnxOpCount(g.Key, g.Count()))
            .OrderByDescending(c => c.Count).ThenBy(c => c.OpType, StringComparer.Ordinal).ToArray();

    /// <summary>
    /// The op types (as <see cref="OnnxNode.QualifiedOpType"/>) of <see cref="OpCounts"/> that are not in
    /// <paramref name="supported"/>: what an importer cannot run, listed before it builds anything.
    /// </summary>
    public IReadOnlyList<OnnxOpCount> UnsupportedOps(IReadOnlySet<string> supported)
    {
        ArgumentNullException.ThrowIfNull(supported);
        return OpCounts().Where(c => !supported.Contains(c.OpType)).ToArray();
    }

    public override string ToString() =>
        $"{File}: ONNX IR {IrVersion}, {ProducerName} {ProducerVersion}, opsets {string.Join(", ", Opsets.Select(o => $"{(o.Key == "" ? "ai.onnx" : o.Key)} {o.Value}"))}";
}
