namespace GpuAnomaly.Kernels.Reduce;

/// <summary>
/// A reduction's geometry, right-aligned to <see cref="MaxRank"/> axes each: the kept axes (K, with x strides A; the
/// output is row-major over them) and the reduced axes (R, with x strides B). Kind is the engine's ReduceKind number:
/// 0 Sum, 1 Mean, 2 Max, 3 Min, 4 Prod, 5 SumSquare, 6 L1, 7 L2, 8 LogSum, 9 LogSumExp.
/// </summary>
public struct ReduceLayout
{
    public const int MaxRank = 6;
    public const int Kinds = 10;
    public int K0, K1, K2, K3, K4, K5;
    public int A0, A1, A2, A3, A4, A5;
    public int R0, R1, R2, R3, R4, R5;
    public int B0, B1, B2, B3, B4, B5;
    public int Kind;

    public readonly long Outputs => (long)K0 * K1 * K2 * K3 * K4 * K5;
    public readonly long Count => (long)R0 * R1 * R2 * R3 * R4 * R5;

    /// <summary>
    /// From x's dims and the reduced flags: axes of size 1 are dropped, and neighbouring axes that are contiguous in x
    /// and on the same side merge (ReduceMean over H, W is one reduced axis of H * W). Null when more than
    /// <see cref="MaxRank"/> axes remain on a side.
    /// </summary>
    public static ReduceLayout? Create(int kind, ReadOnlySpan<int> dims, ReadOnlySpan<bool> reduced)
    {
        if (kind is < 0 or >= Kinds) throw new ArgumentException($"reduce kind {kind} has no GPU kernel");
        var kept = new List<(long Dim, long Stride)>();
        var red = new List<(long Dim, long Stride)>();
        long stride = 1;
        bool? lastSide = null;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            if (dims[i] == 1) continue;
            var side = reduced[i] ? red : kept;
            // Axis i sits just outside the last axis added (inner axes come first here): merge when on the same side.
            if (lastSide == reduced[i] && side.Count > 0 && side[^1].Stride * side[^1].Dim == stride)
                side[^1] = (side[^1].Dim * dims[i], side[^1].Stride);
            else side.Add((dims[i], stride));
            lastSide = reduced[i];
            stride *= dims[i];
        }
        if (kept.Count > MaxRank || red.Count > MaxRank) return null;
        Span<int> k = stackalloc int[MaxRank], a = stackalloc int[MaxRank], r = stackalloc int[MaxRank], b = stackalloc int[MaxRank];
        k.Fill(1);
        r.Fill(1);
        // The lists run innermost first: the innermost goes to slot 5.
        for (int i = 0; i < kept.Count; i++) { k[MaxRank - 1 - i] = checked((int)kept[i].Dim); a[MaxRank - 1 - i] = checked((int)kept[i].Stride); }
        for (int i = 0; i < red.Count; i++) { r[MaxRank - 1 - i] = checked((int)red[i].Dim); b[MaxRank - 1 - i] = checked((int)red[i].Stride); }
        return new ReduceLayout
        {
            K0 = k[0], K1 = k[1], K2 = k[2], K3 = k[3], K4 = k[4], K5 = k[5],
            A0 = a[0], A1 = a[1], A2 = a[2], A3 = a[3], A4 = a[4], A5 = a[5],
            R0 = r[0], R1 = r[1], R2 = r[2], R3 = r[3], R4 = r[4], R5 = r[5],
            B0 = b[0], B1 = b[1], B2 = b[2], B3 = b[3], B4 = b[4], B5 = b[5],
            Kind = kind,
        };
    }
}
