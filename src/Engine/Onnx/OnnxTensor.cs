namespace GpuAnomaly.Engine.Onnx;

/// <summary>Where a tensor's elements are: which TensorProto field holds them.</summary>
public enum OnnxTensorStorage
{
    /// <summary>No elements (a dimension is 0): no data field is needed.</summary>
    Empty,
    /// <summary>raw_data, little-endian: a slice of the file's buffer, not copied until converted.</summary>
    Raw,
    /// <summary>The typed fields: float_data, int32_data, int64_data, double_data, uint64_data or string_data.</summary>
    Typed,
    /// <summary>data_location EXTERNAL: a file next to the model (<see cref="OnnxTensor.External"/>), read on conversion.</summary>
    External,
}

/// <summary>
/// external_data of a tensor: bytes [<see cref="Offset"/>, <see cref="Offset"/> + <see cref="Length"/>) of the file
/// <see cref="Location"/> (as written in the model, relative to its directory), resolved to <see cref="FullPath"/>.
/// Checked at load: the path stays inside the model's directory, the file exists and holds the bytes.
/// </summary>
public sealed record OnnxExternalData(string Location, string FullPath, long Offset, long Length);

/// <summary>
/// A TensorProto: an initializer, a tensor attribute, or a lone tensor file (the ONNX backend tests'
/// <c>input_0.pb</c>, read by <see cref="Load"/>). Its dims, data type and the size of its data were checked when it
/// was read; the elements are decoded on request by the <c>To...Array</c> methods (OnnxTensor.Conversions.cs), each
/// of which reads the types it can convert exactly and refuses the others with an <see cref="OnnxFormatException"/>
/// naming the tensor.
/// </summary>
public sealed partial class OnnxTensor
{
    /// <summary>The most elements one tensor may declare (2^40, as <see cref="Shape"/>): more is a corrupt file.</summary>
    public const long MaxElements = 1L << 40;

    private readonly long[] _dims;
    private readonly ReadOnlyMemory<byte> _raw;
    private readonly Array? _typed;
    private readonly ReadOnlyMemory<byte>[]? _strings;

    internal OnnxTensor(string file, string location, string name, OnnxDataType type, long[] dims, long elements,
        OnnxTensorStorage storage, ReadOnlyMemory<byte> raw, OnnxExternalData? external, Array? typed, ReadOnlyMemory<byte>[]? strings)
    {
        File = file;
        Location = location;
        Name = name;
        ElementType = type;
        _dims = dims;
        Dims = Array.AsReadOnly(dims);
        ElementCount = elements;
        Storage = storage;
        _raw = raw;
        External = external;
        _typed = typed;
        _strings = strings;
    }

    /// <summary>The model file (or display name) the tensor was read from.</summary>
    public string File { get; }

    /// <summary>Where in the file, e.g. <c>graph.initializer[3] 'fc.weight'</c> (see <see cref="OnnxFormatException"/>).</summary>
    public string Location { get; }

    /// <summary>The tensor's name; may be empty for attribute tensors.</summary>
    public string Name { get; }

    public OnnxDataType ElementType { get; }

    /// <summary>The dimensions, outermost first; empty for a scalar.</summary>
    public IReadOnlyList<long> Dims { get; }

    public int Rank => _dims.Length;

    /// <summary>The product of the dims (1 for a scalar).</summary>
    public long ElementCount { get; }

    public OnnxTensorStorage Storage { get; }

    /// <summary>Where the data lives when <see cref="Storage"/> is External, else null.</summary>
    public OnnxExternalData? External { get; }

    /// <summary>Bytes of the elements in raw_data layout (4-bit types two per byte); 0 for STRING tensors.</summary>
    public long ByteLength => ElementType == OnnxDataType.String ? 0 : ElementType.RawBytes(ElementCount);

    /// <summary>The dims as an array of their own, for callers that need one.</summary>
    public long[] DimsArray() => (long[])_dims.Clone();

    /// <summary>Reads a file holding one serialized TensorProto; external data is looked up next to it.</summary>
    public static OnnxTensor Load(string path)
    {
        var (buffer, baseDirectory) = OnnxFile.Read(path);
        return Parse(buffer, path, baseDirectory);
    }

    /// <summary>
    /// Parses one serialized TensorProto. <paramref name="displayName"/> names it in errors;
    /// <paramref name="baseDirectory"/> is where external data files are looked up (null: external data is refused).
    /// The tensor keeps a reference to <paramref name="bytes"/> when they are an array (raw_data is not copied).
    /// </summary>
    public static OnnxTensor Parse(ReadOnlyMemory<byte> bytes, string displayName, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(displayName);
        var root = OnnxFile.Root(bytes, displayName, "tensor", "an ONNX tensor");
        return new OnnxReader(displayName, baseDirectory).ReadTensor(root, "tensor");
    }

    public override string ToString() =>
        $"{(Name.Length > 0 ? Name : Location)}: {ElementType.ProtoName()} [{string.Join(", ", _dims)}] ({Storage})";
}
