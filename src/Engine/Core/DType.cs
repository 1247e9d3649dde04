namespace GpuAnomaly.Engine;

/// <summary>Element types a tensor can hold. Names follow safetensors' dtype tags.</summary>
public enum DType
{
    F32,
    F16,
    I8,
    I32,
    U8,
    /// <summary>2-bit packed ternary weights {-1, 0, +1}: rows of uint32 words of 16 codes (TernaryPacking, docs/FORMATS.md).</summary>
    Ternary2,
}

public static class DTypeExtensions
{
    /// <summary>Bytes per element; 0 for packed types whose size is not a whole number of bytes per element.</summary>
    public static int ElementSize(this DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 => 2,
        DType.I8 or DType.U8 => 1,
        DType.Ternary2 => 0,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>
    /// Bytes a tensor of this shape occupies. Ternary2 is a [rows = shape[0], K = rest] matrix of
    /// 2-bit codes packed 16 per uint32 word with each row padded to a whole word
    /// (GpuAnomaly.Kernels.Ternary.TernaryPacking, docs/FORMATS.md).
    /// </summary>
    public static long StorageBytes(this DType t, Shape shape)
    {
        if (t != DType.Ternary2) return shape.Bytes(t);
        if (shape.Rank == 0 || shape.Elements == 0) return 0;
        long rows = shape[0], k = shape.Elements / rows;
        if (k > int.MaxValue) throw new ArgumentException($"ternary tensor {shape}: rows of {k} weights are too long");
        return GpuAnomaly.Kernels.Ternary.TernaryPacking.Bytes(rows, (int)k);
    }

    /// <summary>The safetensors header tag ("F32", ...).</summary>
    public static string Tag(this DType t) => t switch
    {
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.I8 => "I8",
        DType.I32 => "I32",
        DType.U8 => "U8",
        DType.Ternary2 => "T2",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    public static bool TryParseTag(string tag, out DType t)
    {
        switch (tag)
        {
            case "F32": t = DType.F32; return true;
            case "F16": t = DType.F16; return true;
            case "I8": t = DType.I8; return true;
            case "I32": t = DType.I32; return true;
            case "U8": t = DType.U8; return true;
            case "T2": t = DType.Ternary2; return true;
            default: t = default; return false;
        }
    }
}
