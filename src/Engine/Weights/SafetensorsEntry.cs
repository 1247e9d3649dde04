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

    /// <summary>Bytes per element; 0 for the packed ternary tag "T2".</summary>
    public int ElementSize => SafetensorsDTypes.ElementSize(DTypeTag);

    /// <summary>The product of the dimensions (for "T2": the number of ternary weights, not bytes).</summary>
    public long Elements => Shape.Aggregate(1L, (n, d) => n * d);

    public override string ToString() => $"{Name}: {DTypeTag} [{string.Join(", ", Shape)}] at {Offset}";
}

/// <summary>
/// The dtype tags of the safetensors spec that have a whole number of bytes per element.
/// Every one can be read as raw bytes; F32, F16 and BF16 can be read as float.
/// Besides the spec's tags, "T2" is GpuAnomaly's packed ternary type (docs/FORMATS.md): a tensor
/// [rows, d1, ...] is rows x Words(K) little-endian uint32 words of 2-bit codes, K = d1*d2*...
/// (<see cref="GpuAnomaly.Kernels.Ternary.TernaryPacking"/>); its byte count depends on the shape,
/// so <see cref="StorageBytes"/> rather than <see cref="ElementSize"/> sizes it.
/// Sub-byte float tags (F4, F6_*) are not accepted.
/// </summary>
public static class SafetensorsDTypes
{
    private static readonly Dictionary<string, int> Sizes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E5M2"] = 1, ["F8_E4M3"] = 1, ["F8_E8M0"] = 1,
        ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["F32"] = 4,
        ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
        [Ternary] = 0,
    };

    /// <summary>GpuAnomaly's packed ternary tag.</summary>
    public const string Ternary = "T2";

    /// <summary>The tags this reader and writer accept.</summary>
    public static IEnumerable<string> Tags => Sizes.Keys;

    public static bool IsKnown(string tag) => Sizes.ContainsKey(tag);

    /// <summary>
    /// Bytes a tensor of this tag and shape occupies; null when the count overflows 64 bits or a
    /// "T2" row is longer than 2^31 weights. A shape with a zero dimension takes 0 bytes.
    /// </summary>
    public static ulong? StorageBytes(string tag, IReadOnlyList<int> dims)
    {
        if (dims.Contains(0)) return 0;
        try
        {
            if (tag == Ternary)
            {
                if (dims.Count == 0) return null; // a scalar has no rows
                ulong k = 1;
                for (int i = 1; i < dims.Count; i++) k = checked(k * (ulong)dims[i]);
                if (k > int.MaxValue) return null;
                return checked((ulong)dims[0] * (ulong)GpuAnomaly.Kernels.Ternary.TernaryPacking.Words((int)k) * 4UL);
            }
            ulong bytes = (ulong)ElementSize(tag);
            foreach (int d in dims) bytes = checked(bytes * (ulong)d);
            return bytes;
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>Bytes per element of a known tag (0 for "T2").</summary>
    public static int ElementSize(string tag) =>
        Sizes.TryGetValue(tag, out int size) ? size : throw new ArgumentException($"unknown safetensors dtype '{tag}'");

    /// <summary>Whether <see cref="SafetensorsFile.ReadFloat32"/> can convert this tag to float.</summary>
    public static bool IsFloat(string tag) => tag is "F32" or "F16" or "BF16";

    public static DType? ToEngine(string tag) =>
        tag == Ternary ? Engine.DType.Ternary2 : DTypeExtensions.TryParseTag(tag, out var t) ? t : null;
}
