using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Pool;

/// <summary>
/// An N-D pool (1 to 3 spatial axes, right-aligned to three: a 1-D pool has axes 0 and 1 of size 1, kernel 1, stride 1)
/// over <see cref="Planes"/> = batch x channels planes: per axis the input extent X, output extent Y, kernel K, stride S,
/// dilation D, begin / end pads PB / PE. Average pools divide by the taps inside x, or with
/// <see cref="CountIncludePad"/> by the taps inside x and its pads (ONNX count_include_pad; ceil_mode's extra taps past
/// the end pad never count).
/// </summary>
public struct PoolNdParams
{
    public const int MaxSpatial = 3;
    public int Planes;
    public int X0, X1, X2, Y0, Y1, Y2, K0, K1, K2, S0, S1, S2, D0, D1, D2, PB0, PB1, PB2, PE0, PE1, PE2;
    public int Max, CountIncludePad;

    public readonly long InputElements => (long)Planes * X0 * X1 * X2;
    public readonly long OutputElements => (long)Planes * Y0 * Y1 * Y2;

    /// <summary>From per-axis lists of 1 to 3 spatial axes (the ONNX attribute order).</summary>
    public static PoolNdParams Create(bool max, int planes, int[] x, int[] y, int[] kernel, int[] strides, int[] dilations, int[] padBegin,
        int[] padEnd, bool countIncludePad)
    {
        int sp = kernel.Length;
        if (sp is < 1 or > MaxSpatial || x.Length != sp || y.Length != sp || strides.Length != sp || dilations.Length != sp
            || padBegin.Length != sp || padEnd.Length != sp)
            throw new ArgumentException($"pool: {sp} spatial axes (the kernel takes 1 to {MaxSpatial}, every list of that length)");
        int[] A(int[] v, int fill) { var r = new int[MaxSpatial]; Array.Fill(r, fill); v.CopyTo(r, MaxSpatial - sp); return r; }
        int[] xs = A(x, 1), ys = A(y, 1), k = A(kernel, 1), s = A(strides, 1), d = A(dilations, 1), pb = A(padBegin, 0), pe = A(padEnd, 0);
        var p = new PoolNdParams
        {
            Planes = planes, X0 = xs[0], X1 = xs[1], X2 = xs[2], Y0 = ys[0], Y1 = ys[1], Y2 = ys[2], K0 = k[0], K1 = k[1], K2 = k[2],
            S0 = s[0], S1 = s[1], S2 = s[2], D0 = d[0], D1 = d[1], D2 = d[2], PB0 = pb[0], PB1 = pb[1], PB2 = pb[2], PE0 = pe[0], PE1 = pe[1], PE2 = pe[2],
            Max = max ? 1 : 0, CountIncludePad = countIncludePad ? 1 : 0,
        };
        if (p.InputElements > int.MaxValue || p.OutputElements > int.MaxValue) throw new ArgumentException("pool: tensors above 2^31 elements are not supported");
        return p;
    }
}

/// <summary>
/// The N-D pool kernel: implicitly grouped, one thread per output element (consecutive threads take consecutive outputs
/// of the innermost axis), looping over its window's taps. Out-of-range taps are skipped, so an all-padding max window
/// is -infinity, as the cpu op gives; NaN propagates through max.
/// </summary>
public sealed class PoolNdGpu
{
    private readonly Action<Index1D, int, int, PoolNdParams, ArrayView<float>, ArrayView<float>> _pool;
    private readonly int _gridThreads;

    public PoolNdGpu(Accelerator accelerator)
    {
        _pool = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, PoolNdParams, ArrayView<float>, ArrayView<float>>(PoolKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    public void Forward(in PoolNdParams p, ArrayView<float> x, ArrayView<float> y)
    {
        if (x.Length != p.InputElements || y.Length != p.OutputElements)
            throw new ArgumentException($"pool: x has {x.Length} elements (expected {p.InputElements}), y {y.Length} (expected {p.OutputElements})");
        int n = (int)p.OutputElements;
        if (n == 0) return;
        int t = Math.Min(n, _gridThreads);
        _pool(t, n, t, p, x, y);
    }

    /// <summary>Taps of one axis' window that fall inside [lo, hi) (x itself, or x with its pads).</summary>
    private static int Taps(int start, int k, int d, int lo, int hi)
    {
        int c = 0;
        for (int w = 0; w < k; w++)
        {
            int q = start + w * d;
            if (q >= lo && q < hi) c++;
        }
        return c;
    }

    private static void PoolKernel(Index1D index, int n, int stride, PoolNdParams p, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            int r = i;
            int o2 = r % p.Y2; r /= p.Y2;
            int o1 = r % p.Y1; r /= p.Y1;
            int o0 = r % p.Y0; int plane = r / p.Y0;
            int s0 = o0 * p.S0 - p.PB0, s1 = o1 * p.S1 - p.PB1, s2 = o2 * p.S2 - p.PB2;
            int planeBase = plane * p.X0 * p.X1 * p.X2;
            float acc = p.Max != 0 ? float.NegativeInfinity : 0f;
            for (int w0 = 0; w0 < p.K0; w0++)
            {
                int q0 = s0 + w0 * p.D0;
                if (q0 < 0 || q0 >= p.X0) continue;
                for (int w1 = 0; w1 < p.K1; w1++)
                {
                    int q1 = s1 + w1 * p.D1;
                    if (q1 < 0 || q1 >= p.X1) continue;
                    int rowBase = planeBase + (q0 * p.X1 + q1) * p.X2;
                    for (int w2 = 0; w2 < p.K2; w2++)
                    {
                        int q2 = s2 + w2 * p.D2;
                        if (q2 < 0 || q2 >= p.X2) continue;
                        float v = x[rowBase + q2];
                        if (p.Max != 0) { if (float.IsNaN(v) || v > acc) acc = v; }
                        else acc += v;
                    }
                }
            }
            if (p.Max == 0)
            {
                // The window is a product of per-axis windows, so its tap count is the product of per-axis counts.
                int count = p.CountIncludePad != 0
                    ? Taps(s0, p.K0, p.D0, -p.PB0, p.X0 + p.PE0) * Taps(s1, p.K1, p.D1, -p.PB1, p.X1 + p.PE1) * Taps(s2, p.K2, p.D2, -p.PB2, p.X2 + p.PE2)
                    : Taps(s0, p.K0, p.D0, 0, p.X0) * Taps(s1, p.K1, p.D1, 0, p.X1) * Taps(s2, p.K2, p.D2, 0, p.X2);
                acc /= count;
            }
            y[i] = acc;
        }
    }
}
