using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Axis;

/// <summary>
/// The generic ONNX ops that walk one axis of x viewed as [outer, n, inner]: ArgMax / ArgMin, CumSum, Hardmax and TopK.
/// Implicitly grouped grid-stride kernels, one thread per row (an (outer, inner) pair: consecutive threads take
/// consecutive inner positions, so their reads coalesce), each walking its row in the cpu op's order, so every device
/// gives the same index at a tie, the same NaN handling and the same float sums. Indices are written as float
/// (integers exact up to 2^24, the engine's integer-index convention).
/// </summary>
public sealed class AxisGpu
{
    private readonly Action<Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>> _argExtreme;
    private readonly Action<Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>> _cumSum;
    private readonly Action<Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>> _hardmax;
    private readonly Action<Index1D, int, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>> _topK;
    private readonly int _gridThreads;

    public AxisGpu(Accelerator accelerator)
    {
        _argExtreme = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(ArgExtremeKernel);
        _cumSum = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(CumSumKernel);
        _hardmax = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, int, ArrayView<float>, ArrayView<float>>(HardmaxKernel);
        _topK = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(TopKKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>Rows of [outer, n, inner] (checked against x and y's lengths and int32 indexing); 0 when there is nothing to do.</summary>
    private static int Rows(string what, long outer, int n, long inner, long xLength, long yLength, long yPerRow)
    {
        if (outer < 0 || n < 0 || inner < 0) throw new ArgumentException($"{what}: negative extent [{outer}, {n}, {inner}]");
        long rows = outer * inner;
        if (rows * n > int.MaxValue || rows * yPerRow > int.MaxValue) throw new ArgumentException($"{what}: tensors above 2^31 elements are not supported");
        if (xLength != rows * n || yLength != rows * yPerRow)
            throw new ArgumentException($"{what}: x has {xLength} elements, y {yLength}, for [{outer}, {n}, {inner}]");
        return n == 0 && yPerRow == 0 ? 0 : (int)rows;
    }

    /// <summary>y[o, i] = the index along the axis of the maximum (max) or minimum; NaN wins at its first place (numpy).</summary>
    public void ArgExtreme(bool max, bool selectLast, long outer, int n, long inner, ArrayView<float> x, ArrayView<float> y)
    {
        if (n < 1) throw new ArgumentException("arg-extreme over an empty axis");
        int rows = Rows("arg-extreme", outer, n, inner, x.Length, y.Length, 1);
        if (rows > 0) { int t = Math.Min(rows, _gridThreads); _argExtreme(t, rows, t, n, (int)inner, max ? 1 : 0, selectLast ? 1 : 0, x, y); }
    }

    /// <summary>Running sums along the axis; exclusive leaves each element out of its own sum, reverse runs from the end.</summary>
    public void CumSum(bool exclusive, bool reverse, long outer, int n, long inner, ArrayView<float> x, ArrayView<float> y)
    {
        int rows = Rows("cumsum", outer, n, inner, x.Length, y.Length, n);
        if (rows > 0 && n > 0) { int t = Math.Min(rows, _gridThreads); _cumSum(t, rows, t, n, (int)inner, exclusive ? 1 : 0, reverse ? 1 : 0, x, y); }
    }

    /// <summary>1 at the first maximum of each row (strictly greater replaces, as the cpu op), 0 elsewhere.</summary>
    public void Hardmax(long outer, int n, long inner, ArrayView<float> x, ArrayView<float> y)
    {
        int rows = Rows("hardmax", outer, n, inner, x.Length, y.Length, n);
        if (rows > 0 && n > 0) { int t = Math.Min(rows, _gridThreads); _hardmax(t, rows, t, n, (int)inner, x, y); }
    }

    /// <summary>
    /// The k first of each row in the order largest-first (or smallest-first), NaN above every number, ties by the lower
    /// index; y is [outer, k, inner] of the values, or of the indices when <paramref name="indices"/>.
    /// </summary>
    public void TopK(int k, bool largest, bool indices, long outer, int n, long inner, ArrayView<float> x, ArrayView<float> y)
    {
        if (k < 0 || k > n) throw new ArgumentException($"top-{k} of an axis of {n}");
        int rows = Rows("topk", outer, n, inner, x.Length, y.Length, k);
        if (rows > 0 && k > 0) { int t = Math.Min(rows, _gridThreads); _topK(t, rows, t, n, (int)inner, k, largest ? 1 : 0, indices ? 1 : 0, x, y); }
    }

    private static void ArgExtremeKernel(Index1D index, int rows, int stride, int n, int inner, int max, int selectLast, ArrayView<float> x, ArrayView<float> y)
    {
        for (int r = index; r < rows; r += stride)
        {
            int b = r / inner * n * inner + r % inner;
            float best = x[b];
            int at = 0;
            // The cpu op's loop: a NaN, once best, ends the walk (it is the answer); a later NaN replaces any number.
            for (int k = 1; k < n && !float.IsNaN(best); k++)
            {
                float v = x[b + k * inner];
                bool better = float.IsNaN(v) || (max != 0 ? v > best : v < best) || (selectLast != 0 && v == best);
                if (better) { best = v; at = k; }
            }
            y[r] = at;
        }
    }

    private static void CumSumKernel(Index1D index, int rows, int stride, int n, int inner, int exclusive, int reverse, ArrayView<float> x, ArrayView<float> y)
    {
        for (int r = index; r < rows; r += stride)
        {
            int b = r / inner * n * inner + r % inner;
            float acc = 0f;
            for (int j = 0; j < n; j++)
            {
                int p = b + (reverse != 0 ? n - 1 - j : j) * inner;
                float v = x[p]; // read before the write: y may be x (in place)
                if (exclusive != 0) { y[p] = acc; acc += v; }
                else { acc += v; y[p] = acc; }
            }
        }
    }

    private static void HardmaxKernel(Index1D index, int rows, int stride, int n, int inner, ArrayView<float> x, ArrayView<float> y)
    {
        for (int r = index; r < rows; r += stride)
        {
            int b = r / inner * n * inner + r % inner;
            int at = 0;
            for (int k = 1; k < n; k++)
                if (x[b + k * inner] > x[b + at * inner]) at = k;
            for (int k = 0; k < n; k++) y[b + k * inner] = k == at ? 1f : 0f;
        }
    }

    /// <summary>True when (u, i) comes before (v, j): NaN above every number, reversed for largest, ties by the lower index.</summary>
    private static bool Before(float u, int i, float v, int j, int largest)
    {
        bool nu = float.IsNaN(u), nv = float.IsNaN(v);
        int c = nu || nv ? (nu ? 1 : 0) - (nv ? 1 : 0) : u < v ? -1 : u > v ? 1 : 0;
        if (largest != 0) c = -c;
        return c < 0 || (c == 0 && i < j);
    }

    /// <summary>
    /// Selection without scratch memory: the j-th output is the first element of the row (in the total order of
    /// <see cref="Before"/>) that comes after the (j-1)-th; k passes over the row.
    /// </summary>
    private static void TopKKernel(Index1D index, int rows, int stride, int n, int inner, int k, int largest, int indices, ArrayView<float> x, ArrayView<float> y)
    {
        for (int r = index; r < rows; r += stride)
        {
            int o = r / inner, i = r % inner;
            int b = o * n * inner + i;
            float prev = 0f;
            int prevAt = -1;
            for (int j = 0; j < k; j++)
            {
                float best = 0f;
                int at = -1;
                for (int e = 0; e < n; e++)
                {
                    float v = x[b + e * inner];
                    if (prevAt >= 0 && !Before(prev, prevAt, v, e, largest)) continue;
                    if (at < 0 || Before(v, e, best, at, largest)) { best = v; at = e; }
                }
                y[(o * k + j) * inner + i] = indices != 0 ? at : best;
                prev = best;
                prevAt = at;
            }
        }
    }
}
