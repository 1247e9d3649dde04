namespace GpuAnomaly.Engine.Weights;

/// <summary>
/// One tensor of a safetensors file, as validated by <see cref="SafetensorsFile.Open"/>.
/// <see cref="Offset"/> is relative to the start of the data buffer (after the header), as in the header.
/// </summary>
/// <param name="Name">The state_dict name, e.g. "conv1.weight".</param>
/// <param name="DTypeTag">The header's dtype tag, e.g. "F32", "BF16".</param>
/// <param name="Shape">Dimensions, row-major; empty for a scalar.</param>
/// <param name="Offset">First byte in the data buffer (data_offsets[0]).</param>
/// <param name="ByteLength">data_offsets[1] - data_offsets[0].</param>
public sealed record SafetensorsEntry(string Name, string DTypeTag, IReadOnlyList<int> Shape, long Offset, long ByteLength)
{
    /// <summary>The engine's dtype, or null for tags the engine has no enum member for (BF16, F64, I64, ...).</summary>
    public DType? DType => SafetensorsDTypes.ToEngine(DTypeTag);

    public int ElementSize => SafetensorsDTypes.ElementSize(DTypeTag);

    public long Elements => ByteLength / ElementSize;

    public override string ToString() => $"{Name}: {DTypeTag} [{string.Join(", ", Shape)}] at {Offset}";
}

/// <summary>
/// The dtype tags of the safetensors spec that have a whole number of bytes per element.
/// Every one can be read as raw bytes; F32, F16 and BF16 can be read as float.
/// Sub-byte tags (F4, F6_*) and the engine's packed ternary type are not accepted yet.
/// </summary>
public static class SafetensorsDTypes
{
    private static readonly Dictionary<string, int> Sizes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E5M2"] = 1, ["F8_E4M3"] = 1, ["F8_E8M0"] = 1,
        ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["F32"] = 4,
        ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
    };

    /// <summary>The tags this reader and writer accept.</summary>
    public static IEnumerable<string> Tags => Sizes.Keys;

    public static bool IsKnown(string tag) => Sizes.ContainsKey(tag);

    /// <summary>Bytes per element of a known tag.</summary>
    public static int ElementSize(string tag) =>
        Sizes.TryGetValue(tag, out int size) ? size : throw new ArgumentException($"unknown safetensors dtype '{tag}'");

    /// <summary>Whether <see cref="SafetensorsFile.ReadFloat32"/> can convert this tag to float.</summary>
    public static bool IsFloat(string tag) => tag is "F32" or "F16" or "BF16";

    public static DType? ToEngine(string tag) =>
        tag != "T2" && DTypeExtensions.TryParseTag(tag, out var t) ? t : null;
}
