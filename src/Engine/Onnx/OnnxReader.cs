namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// Turns the messages of onnx/onnx.proto into the immutable Onnx* types, field number by field number. Fields that
/// are read are those the importer needs; every other field, known or not, is skipped by its wire type, so files of
/// later ONNX versions still read. Checks that need only one message (a tensor's size, an attribute's type) are done
/// here, once its fields are all read, so that the error names it; checks across the graph are in
/// <see cref="OnnxGraph.Validate"/>.
/// </summary>
internal sealed partial class OnnxReader(string file, string? baseDirectory)
{
    public OnnxModel ReadModel(ProtoReader r)
    {
        long? irVersion = null;
        string producerName = "", producerVersion = "", domain = "", doc = "";
        long modelVersion = 0;
        OnnxGraph? graph = null;
        var opsets = new Dictionary<string, long>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1: irVersion = r.Int64("ir_version"); break;
                case 2: producerName = r.String("producer_name"); break;
                case 3: producerVersion = r.String("producer_version"); break;
                case 4: domain = r.String("domain"); break;
                case 5: modelVersion = r.Int64("model_version"); break;
                case 6: doc = r.String("doc_string"); break;
                case 7:
                    if (graph is not null) throw r.Error("the model has two graph fields");
                    graph = ReadGraph(r.Message("graph", "graph"), 0);
                    break;
                case 8:
                {
                    var (opsetDomain, version, location) = ReadOpset(r.Message("opset_import", $"opset_import[{opsets.Count}]"));
                    if (!opsets.TryAdd(opsetDomain, version))
                        throw new OnnxFormatException(file, location, $"domain {OnnxFormatException.Quote(opsetDomain)} is imported twice");
                    break;
                }
                case 14: ReadEntry(r.Message("metadata_props", $"metadata_props[{metadata.Count}]"), metadata); break;
                default: r.Skip(); break;
            }
        }
        if (graph is null)
            throw new OnnxFormatException(file, null, irVersion is null
                ? "is not an ONNX model: it has no graph (ModelProto field 7) and no ir_version"
                : "is not an ONNX model: it has no graph (ModelProto field 7)");
        if (irVersion is null) throw new OnnxFormatException(file, null, "the model has no ir_version (ModelProto field 1)");
        if (irVersion < 1) throw new OnnxFormatException(file, null, $"ir_version {irVersion} is not a version of the ONNX format (they start at 1)");
        return new OnnxModel(file, baseDirectory, irVersion.Value, producerName, producerVersion, domain, modelVersion, doc, opsets, metadata, graph);
    }

    private static (string Domain, long Version, string Location) ReadOpset(ProtoReader r)
    {
        string domain = "";
        long version = 0;
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1: domain = r.String("domain"); break;
                case 2: version = r.Int64("version"); break;
                default: r.Skip(); break;
            }
        }
        if (version < 1) throw r.Error($"opset version {version} of domain {OnnxFormatException.Quote(domain)} is not a version (they start at 1)");
        return (domain, version, r.Location);
    }

    /// <summary>A StringStringEntryProto added to <paramref name="into"/>; a key given twice is refused.</summary>
    private static void ReadEntry(ProtoReader r, Dictionary<string, string> into)
    {
        string key = "", value = "";
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1: key = r.String("key"); break;
                case 2: value = r.String("value"); break;
                default: r.Skip(); break;
            }
        }
        if (!into.TryAdd(key, value)) throw r.Error($"key {OnnxFormatException.Quote(key)} is given twice");
    }

    private OnnxGraph ReadGraph(ProtoReader r, int depth)
    {
        string location = r.Location, name = "";
        var nodes = new List<OnnxNode>();
        var initializers = new List<OnnxTensor>();
        var inputs = new List<OnnxValueInfo>();
        var outputs = new List<OnnxValueInfo>();
        var valueInfo = new List<OnnxValueInfo>();
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1: nodes.Add(ReadNode(r.Message("node", $"{location}.node[{nodes.Count}]"), nodes.Count, depth)); break;
                case 2: name = r.String("name"); break;
                case 5: initializers.Add(ReadTensor(r.Message("initializer", $"{location}.initializer[{initializers.Count}]"), "initializer")); break;
                case 11: inputs.Add(ReadValueInfo(r.Message("input", $"{location}.input[{inputs.Count}]"))); break;
                case 12: outputs.Add(ReadValueInfo(r.Message("output", $"{location}.output[{outputs.Count}]"))); break;
                case 13: valueInfo.Add(ReadValueInfo(r.Message("value_info", $"{location}.value_info[{valueInfo.Count}]"))); break;
                case 15: throw r.Error("sparse initializers (GraphProto.sparse_initializer) are not supported: store the weights dense");
                default: r.Skip(); break;
            }
        }
        return new OnnxGraph(file, location, name, nodes, initializers, inputs, outputs, valueInfo);
    }

    private OnnxNode ReadNode(ProtoReader r, int index, int depth)
    {
        string at = r.Location, name = "", opType = "", domain = "";
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new Dictionary<string, OnnxAttribute>(StringComparer.Ordinal);
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1: inputs.Add(r.String("input")); break;
                case 2: outputs.Add(r.String("output")); break;
                case 3:
                    name = r.String("name");
                    r.Location = NodeLocation(at, name);
                    break;
                case 4: opType = r.String("op_type"); break;
                case 7: domain = r.String("domain"); break;
                case 5:
                {
                    var a = ReadAttribute(r.Message("attribute", $"{r.Location} attribute[{attributes.Count}]"), r.Location, depth);
                    if (!attributes.TryAdd(a.Name, a)) throw r.Error($"attribute {OnnxFormatException.Quote(a.Name)} is given twice");
                    break;
                }
                default: r.Skip(); break;
            }
        }
        if (opType.Length == 0) throw r.Error("node has no op_type");
        return new OnnxNode(file, r.Location, index, name, opType, domain, inputs, outputs, attributes);
    }

    private static string NodeLocation(string at, string name) => name.Length == 0 ? at : $"{at} {OnnxFormatException.Quote(name)}";
}
