namespace GpuAnomaly.Engine.Onnx;

// AttributeProto, ValueInfoProto and TypeProto.
internal sealed partial class OnnxReader
{
    private OnnxAttribute ReadAttribute(ProtoReader r, string nodeLocation, int depth)
    {
        string name = "";
        long type = 0;
        object? scalar = null; // f, i or s: the last one given
        OnnxTensor? tensor = null;
        OnnxGraph? graph = null;
        List<float>? floats = null;
        List<long>? ints = null;
        List<ReadOnlyMemory<byte>>? strings = null;
        List<OnnxTensor>? tensors = null;
        List<OnnxGraph>? graphs = null;
        var present = new SortedSet<OnnxAttributeType>(); // the kinds whose fields the attribute holds
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1:
                    name = r.String("name");
                    if (name.Length > 0) r.Location = $"{nodeLocation} attribute {OnnxFormatException.Quote(name)}";
                    break;
                case 20: type = r.Int64("type"); break;
                case 2: scalar = r.Float("f"); present.Add(OnnxAttributeType.Float); break;
                case 3: scalar = r.Int64("i"); present.Add(OnnxAttributeType.Int); break;
                case 4: scalar = r.Bytes("s"); present.Add(OnnxAttributeType.String); break;
                case 5: tensor = ReadTensor(r.Message("t", r.Location), "tensor"); present.Add(OnnxAttributeType.Tensor); break;
                case 6: graph = ReadSubgraph(r, "g", r.Location, depth); present.Add(OnnxAttributeType.Graph); break;
                case 7: r.Floats("floats", floats ??= []); present.Add(OnnxAttributeType.Floats); break;
                case 8: r.Int64s("ints", ints ??= []); present.Add(OnnxAttributeType.Ints); break;
                case 9: (strings ??= []).Add(r.Bytes("strings")); present.Add(OnnxAttributeType.Strings); break;
                case 10:
                    (tensors ??= []).Add(ReadTensor(r.Message("tensors", $"{r.Location}.tensors[{tensors.Count}]"), "tensor"));
                    present.Add(OnnxAttributeType.Tensors);
                    break;
                case 11:
                    (graphs ??= []).Add(ReadSubgraph(r, "graphs", $"{r.Location}[{graphs.Count}]", depth));
                    present.Add(OnnxAttributeType.Graphs);
                    break;
                // Kept as their type only: the engine runs no op that takes them.
                case 22: r.Bytes("sparse_tensor"); present.Add(OnnxAttributeType.SparseTensor); break;
                case 23: r.Bytes("sparse_tensors"); present.Add(OnnxAttributeType.SparseTensors); break;
                case 14: r.Bytes("tp"); present.Add(OnnxAttributeType.TypeProto); break;
                case 15: r.Bytes("type_protos"); present.Add(OnnxAttributeType.TypeProtos); break;
                default: r.Skip(); break;
            }
        }
        if (name.Length == 0) throw r.Error("attribute has no name");

        OnnxAttributeType kind;
        if (type == 0)
        {
            // Files from before IR version 2 have no type: it is the one kind of value present.
            if (present.Count != 1)
                throw r.Error(present.Count == 0 ? "attribute has no type and no value" : $"attribute has no type and values of several types ({Kinds(present)})");
            kind = present.Min;
        }
        else
        {
            if (type is < 1 or > (long)OnnxAttributeType.TypeProtos) throw r.Error($"attribute type {type} is not an AttributeProto.AttributeType");
            kind = (OnnxAttributeType)type;
            present.Remove(kind);
            if (present.Count > 0) throw r.Error($"attribute has type {OnnxAttribute.TypeName(kind)} but also holds {Kinds(present)} values");
        }

        // proto3 writers leave out zero scalars and empty lists, so a missing value of a declared type is the default.
        object? value = kind switch
        {
            OnnxAttributeType.Float => scalar ?? 0f,
            OnnxAttributeType.Int => scalar ?? 0L,
            OnnxAttributeType.String => scalar ?? ReadOnlyMemory<byte>.Empty,
            OnnxAttributeType.Tensor => tensor ?? throw r.Error("attribute has type TENSOR but no tensor"),
            OnnxAttributeType.Graph => graph ?? throw r.Error("attribute has type GRAPH but no graph"),
            OnnxAttributeType.Floats => (floats ?? []).ToArray(),
            OnnxAttributeType.Ints => (ints ?? []).ToArray(),
            OnnxAttributeType.Strings => (strings ?? []).ToArray(),
            OnnxAttributeType.Tensors => (tensors ?? []).ToArray(),
            OnnxAttributeType.Graphs => (graphs ?? []).ToArray(),
            _ => null,
        };
        return new OnnxAttribute(file, r.Location, name, kind, value);

        static string Kinds(IEnumerable<OnnxAttributeType> kinds) => string.Join(", ", kinds.Select(OnnxAttribute.TypeName));
    }

    private OnnxGraph ReadSubgraph(ProtoReader r, string field, string location, int depth)
    {
        if (depth + 1 > OnnxModel.MaxSubgraphDepth)
            throw r.Error($"subgraphs nest deeper than {OnnxModel.MaxSubgraphDepth} levels");
        return ReadGraph(r.Message(field, location), depth + 1);
    }

    private static OnnxValueInfo ReadValueInfo(ProtoReader r)
    {
        string at = r.Location, name = "";
        var (kind, elementType, shape) = (OnnxValueKind.Unknown, OnnxDataType.Undefined, (IReadOnlyList<OnnxDim>?)null);
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1:
                    name = r.String("name");
                    r.Location = name.Length == 0 ? at : $"{at} {OnnxFormatException.Quote(name)}";
                    break;
                case 2: (kind, elementType, shape) = ReadType(r.Message("type", r.Location)); break;
                default: r.Skip(); break;
            }
        }
        return new OnnxValueInfo(r.Location, name, kind, elementType, shape);
    }

    /// <summary>A TypeProto: a oneof, so the last value field given wins. Only tensor types are looked into.</summary>
    private static (OnnxValueKind, OnnxDataType, IReadOnlyList<OnnxDim>?) ReadType(ProtoReader r)
    {
        var result = (OnnxValueKind.Unknown, OnnxDataType.Undefined, (IReadOnlyList<OnnxDim>?)null);
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1: result = ReadTensorType(r.Message("tensor_type", r.Location), OnnxValueKind.Tensor); break;
                case 8: result = ReadTensorType(r.Message("sparse_tensor_type", r.Location), OnnxValueKind.SparseTensor); break;
                case 4: r.Bytes("sequence_type"); result = (OnnxValueKind.Sequence, OnnxDataType.Undefined, null); break;
                case 5: r.Bytes("map_type"); result = (OnnxValueKind.Map, OnnxDataType.Undefined, null); break;
                case 7: r.Bytes("opaque_type"); result = (OnnxValueKind.Opaque, OnnxDataType.Undefined, null); break;
                case 9: r.Bytes("optional_type"); result = (OnnxValueKind.Optional, OnnxDataType.Undefined, null); break;
                default: r.Skip(); break;
            }
        }
        return result;
    }

    private static (OnnxValueKind, OnnxDataType, IReadOnlyList<OnnxDim>?) ReadTensorType(ProtoReader r, OnnxValueKind kind)
    {
        var elementType = OnnxDataType.Undefined;
        List<OnnxDim>? shape = null;
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1:
                    int e = r.Int32("elem_type");
                    if (e != 0 && !OnnxDataTypeExtensions.IsKnown(e)) throw r.Error($"elem_type {e} is not a TensorProto.DataType");
                    elementType = (OnnxDataType)e;
                    break;
                case 2: shape = ReadShape(r.Message("shape", r.Location)); break;
                default: r.Skip(); break;
            }
        }
        return (kind, elementType, shape);
    }

    private static List<OnnxDim> ReadShape(ProtoReader r)
    {
        var dims = new List<OnnxDim>();
        while (r.Next())
        {
            if (r.Field != 1) { r.Skip(); continue; }
            var d = r.Message("dim", $"{r.Location} dim {dims.Count}");
            var dim = new OnnxDim(null, null);
            while (d.Next())
            {
                switch (d.Field)
                {
                    case 1:
                        long v = d.Int64("dim_value");
                        if (v < 0) throw d.Error($"dim_value {v} is negative");
                        dim = new OnnxDim(v, null);
                        break;
                    case 2: dim = new OnnxDim(null, d.String("dim_param")); break;
                    default: d.Skip(); break;
                }
            }
            dims.Add(dim);
        }
        return dims;
    }
}
