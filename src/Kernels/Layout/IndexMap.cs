namespace GpuAnomaly.Kernels.Layout;

/// <summary>How a source coordinate outside its axis is read (ONNX Pad's modes).</summary>
public enum OutsideMode
{
    /// <summary>The element is <see cref="IndexMap.Value"/>.</summary>
    Constant = 0,
    /// <summary>The coordinate clamps to the axis (Pad edge).</summary>
    Edge = 1,
    /// <summary>The coordinate mirrors at the ends without repeating them (Pad reflect; numpy's reflect).</summary>
    Reflect = 2,
    /// <summary>The coordinate wraps around (Pad wrap).</summary>
    Wrap = 3,
}

/// <summary>
/// One copy from a source array into a destination, as a walk over iteration dims D (right-aligned to
/// <see cref="MaxRank"/>, leading ones): iteration coordinate c_i reads source coordinate p_i = O_i + c_i * P_i (or
/// table[c_i] on the <see cref="TableAxis"/>), source offset <see cref="SrcBase"/> + sum p_i * S_i, and writes
/// destination offset <see cref="DstBase"/> + sum c_i * T_i. A p_i outside [0, N_i) follows <see cref="Mode"/>.
/// Transpose (permuted S), Slice (O = start, P = step, negative too), Expand (P = 0), Pad (O = -begin), Concat (T = the
/// output's strides, DstBase = the input's place) and Gather (a table of indices) are all this map.
/// </summary>
public struct IndexMap
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;
    public int O0, O1, O2, O3, O4, O5;
    public int P0, P1, P2, P3, P4, P5;
    public int N0, N1, N2, N3, N4, N5;
    public int S0, S1, S2, S3, S4, S5;
    public int T0, T1, T2, T3, T4, T5;
    public int SrcBase, DstBase;
    /// <summary>The axis (0..5 after alignment) whose source coordinate is table[c]; -1 for none.</summary>
    public int TableAxis;
    public OutsideMode Mode;
    public float Value;

    /// <summary>Elements the walk visits (the product of D).</summary>
    public readonly long Count => (long)D0 * D1 * D2 * D3 * D4 * D5;
}

/// <summary>One axis of an <see cref="IndexMap"/> before alignment: iteration dim, source offset / step / extent / stride, destination stride.</summary>
public readonly record struct MapAxis(int Dim, long Offset, long Step, int Extent, long SrcStride, long DstStride);

public static class IndexMaps
{
    /// <summary>
    /// Builds the map from its axes (any rank): axes of dim 1 whose source coordinate is inside are folded into the
    /// base offsets (so rank-7 shapes with ones still fit); more than <see cref="IndexMap.MaxRank"/> axes left is null.
    /// Offsets must stay within int (the caller's tensors are below 2^31 elements): checked.
    /// </summary>
    public static IndexMap? Create(IReadOnlyList<MapAxis> axes, long srcBase = 0, long dstBase = 0, int tableAxis = -1,
        OutsideMode mode = OutsideMode.Constant, float value = 0)
    {
        var kept = new List<MapAxis>();
        int table = -1;
        for (int i = 0; i < axes.Count; i++)
        {
            var a = axes[i];
            if (a.Dim == 1 && i != tableAxis && a.Offset >= 0 && a.Offset < a.Extent)
            {
                srcBase += a.Offset * a.SrcStride;
                continue;
            }
            if (i == tableAxis) table = kept.Count;
            kept.Add(a);
        }
        if (kept.Count > IndexMap.MaxRank) return null;
        Span<int> d = stackalloc int[IndexMap.MaxRank], o = stackalloc int[IndexMap.MaxRank], p = stackalloc int[IndexMap.MaxRank];
        Span<int> n = stackalloc int[IndexMap.MaxRank], s = stackalloc int[IndexMap.MaxRank], t = stackalloc int[IndexMap.MaxRank];
        d.Fill(1);
        n.Fill(1);
        int off = IndexMap.MaxRank - kept.Count;
        for (int i = 0; i < kept.Count; i++)
        {
            var a = kept[i];
            d[off + i] = a.Dim;
            o[off + i] = checked((int)a.Offset);
            p[off + i] = checked((int)a.Step);
            n[off + i] = a.Extent;
            s[off + i] = checked((int)a.SrcStride);
            t[off + i] = checked((int)a.DstStride);
        }
        return new IndexMap
        {
            D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5],
            O0 = o[0], O1 = o[1], O2 = o[2], O3 = o[3], O4 = o[4], O5 = o[5],
            P0 = p[0], P1 = p[1], P2 = p[2], P3 = p[3], P4 = p[4], P5 = p[5],
            N0 = n[0], N1 = n[1], N2 = n[2], N3 = n[3], N4 = n[4], N5 = n[5],
            S0 = s[0], S1 = s[1], S2 = s[2], S3 = s[3], S4 = s[4], S5 = s[5],
            T0 = t[0], T1 = t[1], T2 = t[2], T3 = t[3], T4 = t[4], T5 = t[5],
            SrcBase = checked((int)srcBase), DstBase = checked((int)dstBase),
            TableAxis = table < 0 ? -1 : off + table, Mode = mode, Value = value,
        };
    }

    /// <summary>Row-major strides of <paramref name="dims"/>, in elements.</summary>
    public static long[] Strides(IReadOnlyList<int> dims)
    {
        var s = new long[dims.Count];
        long acc = 1;
        for (int i = dims.Count - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= dims[i];
        }
        return s;
    }

    /// <summary>A source coordinate outside [0, n) under <paramref name="mode"/>; -1 for a constant. Shared by the kernel and the tests.</summary>
    public static int Outside(int p, int n, OutsideMode mode)
    {
        if (mode == OutsideMode.Edge) return p < 0 ? 0 : n - 1;
        if (mode == OutsideMode.Wrap) return ((p % n) + n) % n;
        if (mode == OutsideMode.Reflect)
        {
            if (n == 1) return 0;
            int period = 2 * (n - 1), q = ((p % period) + period) % period;
            return q < n ? q : period - q;
        }
        return -1;
    }
}
