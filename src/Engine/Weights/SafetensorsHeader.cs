using System.Text.Json;
using System.Text.Unicode;

namespace GpuAnomaly.Engine.Weights;

/// <summary>
/// The JSON header of a safetensors file, validated against the length of the data buffer that
/// follows it. Every check names the tensor at fault; nothing from the file is trusted before
/// the whole header has passed.
/// </summary>
internal sealed class SafetensorsHeader
{
    public const string MetadataKey = "__metadata__";

    private SafetensorsHeader(IReadOnlyList<SafetensorsEntry> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    public IReadOnlyList<SafetensorsEntry> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafetensorsHeader Parse(string path, byte[] json, long bufferLength)
    {
        if (!Utf8.IsValid(json))
            throw new SafetensorsException(path, null, "header is not valid UTF-8");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(path, null, $"header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(path, null, $"header is a JSON {Kind(root)}, not an object");
            // The spec fixes the first byte so that a reader can tell a header from garbage at a glance.
            if (json[0] != (byte)'{')
                throw new SafetensorsException(path, null, "header must begin with '{' (whitespace is allowed only after the JSON, as padding)");

            var seen = new HashSet<string>(StringComparer.Ordinal);
            var entries = new List<SafetensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new SafetensorsException(path, property.Name == MetadataKey ? null : property.Name,
                        property.Name == MetadataKey ? "duplicate key '__metadata__' in the header" : "duplicate tensor name in the header");
                if (property.Name == MetadataKey)
                    ReadMetadata(path, property.Value, metadata);
                else
                    entries.Add(ReadEntry(path, property.Name, property.Value, bufferLength));
            }

            CheckLayout(path, entries, bufferLength);
            return new SafetensorsHeader(entries, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(path, null, $"'__metadata__' is a JSON {Kind(value)}, not an object of strings");
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsException(path, null,
                    $"'__metadata__' value of key '{SafetensorsException.Printable(p.Name)}' is a JSON {Kind(p.Value)}, not a string");
            if (!metadata.TryAdd(p.Name, p.Value.GetString()!))
                throw new SafetensorsException(path, null, $"duplicate key '{SafetensorsException.Printable(p.Name)}' in '__metadata__'");
        }
    }

    private static SafetensorsEntry ReadEntry(string path, string name, JsonElement value, long bufferLength)
    {
        SafetensorsException Bad(string problem) => new(path, name, problem);

        if (value.ValueKind != JsonValueKind.Object)
            throw Bad($"entry is a JSON {Kind(value)}, not an object with dtype, shape and data_offsets");

        JsonElement? dtype = null, shape = null, offsets = null;
        foreach (var p in value.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype" when dtype is null: dtype = p.Value; break;
                case "shape" when shape is null: shape = p.Value; break;
                case "data_offsets" when offsets is null: offsets = p.Value; break;
                case "dtype" or "shape" or "data_offsets": throw Bad($"duplicate key '{p.Name}'");
                default: throw Bad($"unexpected key '{SafetensorsException.Printable(p.Name)}' (an entry holds dtype, shape and data_offsets)");
            }
        }
        if (dtype is not { } dt) throw Bad("missing 'dtype'");
        if (shape is not { } sh) throw Bad("missing 'shape'");
        if (offsets is not { } of) throw Bad("missing 'data_offsets'");

        // dtype
        if (dt.ValueKind != JsonValueKind.String) throw Bad($"'dtype' is a JSON {Kind(dt)}, not a string");
        string tag = dt.GetString()!;
        if (!SafetensorsDTypes.IsKnown(tag))
            throw Bad($"unknown dtype '{SafetensorsException.Printable(tag)}' (known: {string.Join(", ", SafetensorsDTypes.Tags)})");

        // shape
        if (sh.ValueKind != JsonValueKind.Array) throw Bad($"'shape' is a JSON {Kind(sh)}, not an array of integers");
        var dims = new int[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number) throw Bad($"shape dimension {i} is a JSON {Kind(d)}, not an integer");
            string full = d.GetRawText(), raw = SafetensorsException.Printable(full, 40);
            if (!IsIntegerLiteral(full)) throw Bad($"shape dimension {i} is {raw}, not an integer");
            if (full.StartsWith('-')) throw Bad($"shape dimension {i} is {raw}, a negative dimension");
            if (!d.TryGetInt64(out long v) || v > int.MaxValue) throw Bad($"shape dimension {i} is {raw}, larger than {int.MaxValue}");
            dims[i++] = (int)v;
        }
        string shapeText = "[" + string.Join(", ", dims) + "]";

        // data_offsets
        if (of.ValueKind != JsonValueKind.Array || of.GetArrayLength() != 2)
            throw Bad($"'data_offsets' is {SafetensorsException.Printable(of.GetRawText(), 60)}, not an array of two integers [begin, end]");
        var pair = new long[2];
        i = 0;
        foreach (var o in of.EnumerateArray())
        {
            string full = o.ValueKind == JsonValueKind.Number ? o.GetRawText() : "a JSON " + Kind(o);
            string raw = SafetensorsException.Printable(full, 40);
            if (o.ValueKind != JsonValueKind.Number || !IsIntegerLiteral(full))
                throw Bad($"data_offsets[{i}] is {raw}, not an integer");
            if (raw.StartsWith('-')) throw Bad($"data_offsets[{i}] is {raw}, a negative offset");
            if (!o.TryGetInt64(out long v) || v > bufferLength)
                throw Bad($"data_offsets[{i}] is {raw}, past the end of the data buffer ({bufferLength} bytes): the file is truncated or the offsets are wrong");
            pair[i++] = v;
        }
        long begin = pair[0], end = pair[1];
        if (begin > end) throw Bad($"data_offsets [{begin}, {end}] begin after they end");

        // size: product of dims times element size (T2: rows of packed words), in checked arithmetic
        // (a hostile shape can overflow 64 bits)
        ulong bytes = SafetensorsDTypes.StorageBytes(tag, dims)
            ?? throw Bad(tag == SafetensorsDTypes.Ternary && dims.Length == 0
                ? "T2 (packed ternary) tensors need at least one dimension (the rows)"
                : $"{tag} {shapeText} needs more bytes than 64 bits can count: the shape product overflows 64 bits");
        if (bytes != (ulong)(end - begin))
            throw Bad($"data_offsets [{begin}, {end}] hold {end - begin} bytes but {tag} {shapeText} needs {bytes}");

        return new SafetensorsEntry(name, tag, dims, begin, end - begin);
    }

    /// <summary>
    /// The spec's layout rule: sorted by offset, the tensors tile the data buffer exactly, from byte 0
    /// to its last byte, with no gap, no overlap and nothing after. Sorts <paramref name="entries"/>.
    /// </summary>
    private static void CheckLayout(string path, List<SafetensorsEntry> entries, long bufferLength)
    {
        entries.Sort((a, b) => a.Offset != b.Offset ? a.Offset.CompareTo(b.Offset) : a.ByteLength.CompareTo(b.ByteLength));
        long expected = 0;
        SafetensorsEntry? previous = null;
        foreach (var e in entries)
        {
            if (e.Offset > expected)
                throw new SafetensorsException(path, e.Name, previous is null
                    ? $"the first tensor begins at byte {e.Offset} of the data buffer, not 0 (data_offsets must start at 0)"
                    : $"begins at byte {e.Offset}, leaving a gap of {e.Offset - expected} bytes after tensor '{SafetensorsException.Printable(previous.Name)}' (which ends at {expected})");
            if (e.Offset < expected)
                throw new SafetensorsException(path, e.Name,
                    $"data_offsets [{e.Offset}, {e.Offset + e.ByteLength}] overlap tensor '{SafetensorsException.Printable(previous!.Name)}' (which ends at {expected})");
            expected = e.Offset + e.ByteLength;
            if (e.ByteLength > 0) previous = e;
        }
        if (expected != bufferLength)
            throw new SafetensorsException(path, null, expected < bufferLength
                ? $"{bufferLength - expected} trailing bytes after the last tensor (the data buffer holds {bufferLength} bytes, the tensors {expected})"
                : $"the tensors need {expected} bytes, past the end of the data buffer ({bufferLength} bytes)");
    }

    private static bool IsIntegerLiteral(string raw) => raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0;

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };
}
