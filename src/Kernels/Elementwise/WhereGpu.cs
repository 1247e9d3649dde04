using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>Output dims D (right-aligned to <see cref="MaxRank"/>) and the condition's, a's and b's strides C, A, B along them (0 where broadcast).</summary>
public struct WhereLayout
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;
    public int C0, C1, C2, C3, C4, C5;
    public int A0, A1, A2, A3, A4, A5;
    public int B0, B1, B2, B3, B4, B5;

    public readonly long Count => (long)D0 * D1 * D2 * D3 * D4 * D5;

    /// <summary>From the output dims and the three inputs' broadcast strides (equal rank); output axes of size 1 fold away; null past <see cref="MaxRank"/>.</summary>
    public static WhereLayout? Create(ReadOnlySpan<int> dims, ReadOnlySpan<long> sc, ReadOnlySpan<long> sa, ReadOnlySpan<long> sb)
    {
        long count = 1;
        foreach (int e in dims) count *= e;
        if (count > int.MaxValue) throw new ArgumentException("where: tensors above 2^31 elements are not supported");
        var kept = new List<int>();
        for (int i = 0; i < dims.Length; i++)
            if (dims[i] != 1) kept.Add(i);
        if (kept.Count > MaxRank) return null;
        Span<int> d = stackalloc int[MaxRank], c = stackalloc int[MaxRank], a = stackalloc int[MaxRank], b = stackalloc int[MaxRank];
        d.Fill(1);
        c.Clear(); a.Clear(); b.Clear();
        int off = MaxRank - kept.Count;
        for (int i = 0; i < kept.Count; i++)
        {
            int k = kept[i];
            (d[off + i], c[off + i], a[off + i], b[off + i]) = (dims[k], (int)sc[k], (int)sa[k], (int)sb[k]);
        }
        return new WhereLayout
        {
            D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5],
            C0 = c[0], C1 = c[1], C2 = c[2], C3 = c[3], C4 = c[4], C5 = c[5],
            A0 = a[0], A1 = a[1], A2 = a[2], A3 = a[3], A4 = a[4], A5 = a[5],
            B0 = b[0], B1 = b[1], B2 = b[2], B3 = b[3], B4 = b[4], B5 = b[5],
        };
    }
}

/// <summary>
/// Where (a broadcasting ternary select: condition != 0 picks a, else b), Trilu (a select by position: x inside the
/// triangle, 0 outside) and Shrink (a unary function with two parameters) on an ILGPU accelerator: implicitly grouped
/// grid-stride kernels, one thread per output element.
/// </summary>
public sealed class WhereGpu
{
    private readonly Action<Index1D, int, int, WhereLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _where;
    private readonly Action<Index1D, int, int, float, float, ArrayView<float>, ArrayView<float>> _shrink;
    private readonly Action<Index1D, int, int, int, int, int, long, ArrayView<float>, ArrayView<float>> _trilu;
    private readonly int _gridThreads;

    public WhereGpu(Accelerator accelerator)
    {
        _where = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, WhereLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(WhereKernel);
        _shrink = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, float, float, ArrayView<float>, ArrayView<float>>(ShrinkKernel);
        _trilu = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, int, int, long, ArrayView<float>, ArrayView<float>>(TriluKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    public void Where(in WhereLayout l, ArrayView<float> condition, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        if (y.Length != l.Count) throw new ArgumentException($"where: y has {y.Length} elements for {l.Count}");
        int n = (int)l.Count;
        if (n > 0) { int t = Math.Min(n, _gridThreads); _where(t, n, t, l, condition, a, b, y); }
    }

    /// <summary>y = x + bias below -lambd, x - bias above lambd, 0 between (ONNX Shrink).</summary>
    public void Shrink(float lambd, float bias, ArrayView<float> x, ArrayView<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"shrink: x has {x.Length} elements, y {y.Length}");
        if (x.Length > int.MaxValue) throw new ArgumentException("shrink: tensors above 2^31 elements are not supported");
        int n = (int)y.Length;
        if (n > 0) { int t = Math.Min(n, _gridThreads); _shrink(t, n, t, lambd, bias, x, y); }
    }

    /// <summary>
    /// Over matrices of rows x cols (the last two axes): keeps x where col - row &gt;= k (upper) or &lt;= k (lower), 0
    /// elsewhere. k is long as ONNX's (any value; the comparison is in long so a huge k needs no clamping).
    /// </summary>
    public void Trilu(bool upper, long k, int rows, int cols, ArrayView<float> x, ArrayView<float> y)
    {
        if (x.Length != y.Length || rows < 0 || cols < 0 || (rows * (long)cols == 0 ? y.Length != 0 : y.Length % ((long)rows * cols) != 0))
            throw new ArgumentException($"trilu: x has {x.Length} elements, y {y.Length}, for matrices of {rows} x {cols}");
        if (y.Length > int.MaxValue) throw new ArgumentException("trilu: tensors above 2^31 elements are not supported");
        int n = (int)y.Length;
        if (n > 0) { int t = Math.Min(n, _gridThreads); _trilu(t, n, t, upper ? 1 : 0, rows, cols, k, x, y); }
    }

    private static void TriluKernel(Index1D index, int n, int stride, int upper, int rows, int cols, long k, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            long d = (long)(i % cols) - i / cols % rows;
            y[i] = (upper != 0 ? d >= k : d <= k) ? x[i] : 0f;
        }
    }

    private static void WhereKernel(Index1D index, int n, int stride, WhereLayout l, ArrayView<float> cond, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            int r = i, oc = 0, oa = 0, ob = 0, k;
            k = r % l.D5; r /= l.D5; oc += k * l.C5; oa += k * l.A5; ob += k * l.B5;
            k = r % l.D4; r /= l.D4; oc += k * l.C4; oa += k * l.A4; ob += k * l.B4;
            k = r % l.D3; r /= l.D3; oc += k * l.C3; oa += k * l.A3; ob += k * l.B3;
            k = r % l.D2; r /= l.D2; oc += k * l.C2; oa += k * l.A2; ob += k * l.B2;
            k = r % l.D1; r /= l.D1; oc += k * l.C1; oa += k * l.A1; ob += k * l.B1;
            oc += r * l.C0; oa += r * l.A0; ob += r * l.B0;
            y[i] = cond[oc] != 0f ? a[oa] : b[ob];
        }
    }

    private static void ShrinkKernel(Index1D index, int n, int stride, float lambd, float bias, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            y[i] = v < -lambd ? v + bias : v > lambd ? v - bias : 0f;
        }
    }
}
