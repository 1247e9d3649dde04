using System.Globalization;

namespace GpuAnomaly.Engine.Onnx;

// TensorProto: dims, data type, and exactly one source of elements whose size matches them.
internal sealed partial class OnnxReader
{
    public OnnxTensor ReadTensor(ProtoReader r, string what)
    {
        string at = r.Location, name = "";
        var dims = new List<long>();
        long dataType = 0, dataLocation = 0;
        bool segment = false;
        ReadOnlyMemory<byte>? raw = null;
        List<float>? floats = null;
        List<long>? int32s = null, int64s = null;
        List<double>? doubles = null;
        List<ulong>? uint64s = null;
        List<ReadOnlyMemory<byte>>? strings = null;
        Dictionary<string, string>? external = null;
        while (r.Next())
        {
            switch (r.Field)
            {
                case 1: r.Int64s("dims", dims); break;
                case 2: dataType = r.Int32("data_type"); break;
                case 3: r.Bytes("segment"); segment = true; break;
                case 4: r.Floats("float_data", floats ??= []); break;
                case 5: r.Int64s("int32_data", int32s ??= []); break;
                case 6: (strings ??= []).Add(r.Bytes("string_data")); break;
                case 7: r.Int64s("int64_data", int64s ??= []); break;
                case 8:
                    name = r.String("name");
                    r.Location = name.Length == 0 ? at : $"{at} {OnnxFormatException.Quote(name)}";
                    break;
                case 9: raw = r.Bytes("raw_data"); break;
                case 10: r.Doubles("double_data", doubles ??= []); break;
                case 11: r.UInt64s("uint64_data", uint64s ??= []); break;
                case 13: ReadEntry(r.Message("external_data", $"{r.Location} external_data[{external?.Count ?? 0}]"), external ??= []); break;
                case 14: dataLocation = r.Int32("data_location"); break;
                default: r.Skip(); break;
            }
        }

        if (segment) throw r.Error("segmented tensors (TensorProto.segment) are not supported");
        if (dataType == 0) throw r.Error($"{what} has no data_type (UNDEFINED)");
        if (!OnnxDataTypeExtensions.IsKnown(dataType)) throw r.Error($"data_type {dataType} is not a TensorProto.DataType");
        var type = (OnnxDataType)dataType;
        long elements = Elements(r, dims);
        string shape = $"{type.ProtoName()} {DimsText(dims)}";

        if (dataLocation is not (0 or 1)) throw r.Error($"data_location {dataLocation} is neither DEFAULT (0) nor EXTERNAL (1)");
        if (dataLocation == 0 && external is not null) throw r.Error("has external_data but its data_location is DEFAULT, not EXTERNAL");
        var sources = new List<string>();
        if (raw is not null) sources.Add("raw_data");
        if (floats is not null) sources.Add("float_data");
        if (int32s is not null) sources.Add("int32_data");
        if (int64s is not null) sources.Add("int64_data");
        if (doubles is not null) sources.Add("double_data");
        if (uint64s is not null) sources.Add("uint64_data");
        if (strings is not null) sources.Add("string_data");
        if (dataLocation == 1) sources.Add("external data");
        if (sources.Count > 1) throw r.Error($"holds its data twice ({string.Join(" and ", sources)})");

        var storage = OnnxTensorStorage.Typed;
        Array? typed = null;
        OnnxExternalData? externalData = null;
        if (sources.Count == 0)
        {
            if (elements != 0) throw r.Error($"has no data for the {elements} elements of {shape}");
            storage = OnnxTensorStorage.Empty;
        }
        else if (raw is { } bytes)
        {
            if (type == OnnxDataType.String) throw r.Error("a STRING tensor keeps its elements in string_data, not raw_data");
            if (bytes.Length != type.RawBytes(elements))
                throw r.Error($"raw_data holds {bytes.Length} bytes but {shape} needs {type.RawBytes(elements)}");
            storage = OnnxTensorStorage.Raw;
        }
        else if (dataLocation == 1)
        {
            if (type == OnnxDataType.String) throw r.Error("a STRING tensor cannot keep its elements in external data");
            externalData = ResolveExternal(r, external ?? [], type.RawBytes(elements), shape);
            storage = OnnxTensorStorage.External;
        }
        else if (floats is not null)
            typed = Typed(r, "float_data", floats, elements, shape, type switch { OnnxDataType.Float => 1, OnnxDataType.Complex64 => 2, _ => 0 }, "FLOAT and COMPLEX64");
        else if (doubles is not null)
            typed = Typed(r, "double_data", doubles, elements, shape, type switch { OnnxDataType.Double => 1, OnnxDataType.Complex128 => 2, _ => 0 }, "DOUBLE and COMPLEX128");
        else if (int64s is not null)
            typed = Typed(r, "int64_data", int64s, elements, shape, type == OnnxDataType.Int64 ? 1 : 0, "INT64");
        else if (uint64s is not null)
        {
            typed = Typed(r, "uint64_data", uint64s, elements, shape, type is OnnxDataType.UInt64 or OnnxDataType.UInt32 ? 1 : 0, "UINT64 and UINT32");
            if (type == OnnxDataType.UInt32 && uint64s.FindIndex(v => v > uint.MaxValue) is var i and >= 0)
                throw r.Error($"uint64_data element {i} is {uint64s[i]}, out of the range of UINT32");
        }
        else if (int32s is not null)
            typed = Int32Data(r, int32s, type, elements, shape);
        else
        {
            if (type != OnnxDataType.String) throw r.Error($"holds string_data, which is for STRING tensors, but is {type.ProtoName()}");
            if (strings!.Count != elements) throw r.Error($"string_data holds {strings.Count} strings but {shape} has {elements} elements");
        }
        return new OnnxTensor(file, r.Location, name, type, [.. dims], elements, storage, raw ?? default, externalData, typed, strings?.ToArray());
    }

    /// <summary>The product of the dims, refusing negative dims and products over <see cref="OnnxTensor.MaxElements"/> (overflow included).</summary>
    private static long Elements(ProtoReader r, List<long> dims)
    {
        long product = 1;
        bool empty = false;
        for (int k = 0; k < dims.Count; k++)
        {
            if (dims[k] < 0) throw r.Error($"dimension {k} of {DimsText(dims)} is negative");
            if (dims[k] == 0) { empty = true; continue; }
            // Checked on the non-zero dims even when another is 0: such dims are corrupt, whatever the product.
            if (dims[k] > OnnxTensor.MaxElements / product)
                throw r.Error($"dims {DimsText(dims)} hold more than {OnnxTensor.MaxElements} elements (2^40), the limit of a tensor");
            product *= dims[k];
        }
        return empty ? 0 : product;
    }

    private static T[] Typed<T>(ProtoReader r, string field, List<T> values, long elements, string shape, int perElement, string forTypes)
    {
        if (perElement == 0) throw r.Error($"holds {field}, which is for {forTypes}, but is {shape}");
        if (values.Count != elements * perElement)
            throw r.Error($"{field} holds {values.Count} values but {shape} needs {elements * perElement}");
        return [.. values];
    }

    /// <summary>int32_data: the types of at most 32 bits, each value within its type (4-bit types: one packed byte per value).</summary>
    private static int[] Int32Data(ProtoReader r, List<long> values, OnnxDataType type, long elements, string shape)
    {
        (long min, long max) = type switch
        {
            OnnxDataType.Int32 => (int.MinValue, int.MaxValue),
            OnnxDataType.Int16 => (short.MinValue, short.MaxValue),
            OnnxDataType.Int8 => (sbyte.MinValue, sbyte.MaxValue),
            OnnxDataType.UInt16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => (0, ushort.MaxValue),
            OnnxDataType.UInt8 or OnnxDataType.Float8E4M3FN or OnnxDataType.Float8E4M3FNUZ or OnnxDataType.Float8E5M2
                or OnnxDataType.Float8E5M2FNUZ or OnnxDataType.Float8E8M0 or OnnxDataType.UInt4 or OnnxDataType.Int4
                or OnnxDataType.Float4E2M1 => (0, byte.MaxValue),
            OnnxDataType.Bool => (0, 1),
            _ => throw r.Error($"holds int32_data, which is for types of 32 bits or less, but is {shape}"),
        };
        long expected = type.Bits() == 4 ? (elements + 1) / 2 : elements;
        if (values.Count != expected) throw r.Error($"int32_data holds {values.Count} values but {shape} needs {expected}");
        var result = new int[values.Count];
        for (int i = 0; i < result.Length; i++)
        {
            if (values[i] < min || values[i] > max) throw r.Error($"int32_data element {i} is {values[i]}, out of the range of {type.ProtoName()}");
            result[i] = (int)values[i];
        }
        return result;
    }

    /// <summary>
    /// Resolves external_data (location, offset, length) against the model's directory: a relative path that stays
    /// inside it (absolute paths and '..' are refused, so a model cannot make the reader open /etc/shadow), an existing
    /// file, and a byte range inside that file of exactly the tensor's size.
    /// </summary>
    private OnnxExternalData ResolveExternal(ProtoReader r, Dictionary<string, string> entries, long needed, string shape)
    {
        if (!entries.TryGetValue("location", out var location) || location.Length == 0) throw r.Error("external_data has no location");
        string where = $"external data file {OnnxFormatException.Quote(location)}";
        long offset = Number("offset") ?? 0;
        long? length = Number("length");
        if (location.Contains('\0')) throw r.Error($"{where}: the location holds a NUL character");
        if (Path.IsPathRooted(location) || location[0] is '/' or '\\' || (location.Length >= 2 && location[1] == ':'))
            throw r.Error($"{where}: the location is an absolute path; it must be relative to the model's directory");
        if (location.Split('/', '\\').Contains(".."))
            throw r.Error($"{where}: the location leaves the model's directory ('..')");
        if (baseDirectory is null) throw r.Error($"{where}: the model was parsed from memory without a directory to look for it in");

        try
        {
            string root = Path.GetFullPath(baseDirectory);
            string full = Path.GetFullPath(Path.Combine(root, location));
            if (!full.StartsWith(Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw r.Error($"{where}: the location leaves the model's directory");
            if (Directory.Exists(full)) throw r.Error($"{where} is a directory");
            if (!System.IO.File.Exists(full)) throw r.Error($"{where} does not exist (looked for {full})");
            long fileLength = new FileInfo(full).Length;
            if (offset > fileLength) throw r.Error($"{where}: offset {offset} is past its end ({fileLength} bytes)");
            long available = fileLength - offset;
            if (length > available) throw r.Error($"{where}: bytes [{offset}, {offset} + {length}) run past its end ({fileLength} bytes)");
            long bytes = length ?? available;
            if (bytes != needed) throw r.Error($"{where} holds {bytes} bytes for the tensor but {shape} needs {needed}");
            return new OnnxExternalData(location, full, offset, bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw r.Error($"{where}: {e.Message}", e);
        }

        long? Number(string key)
        {
            if (!entries.TryGetValue(key, out var text)) return null;
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                throw r.Error($"external_data {key} {OnnxFormatException.Quote(text)} is not a non-negative integer");
            return v;
        }
    }

    /// <summary>Dims as text, cut after 8 (a hostile file can declare thousands).</summary>
    private static string DimsText(List<long> dims) =>
        dims.Count <= 8 ? $"[{string.Join(", ", dims)}]" : $"[{string.Join(", ", dims.Take(8))}, ... ({dims.Count} dims)]";
}
