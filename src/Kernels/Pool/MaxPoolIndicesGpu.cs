using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Pool;

/// <summary>
/// MaxPool's Indices output on an ILGPU accelerator (the <see cref="PoolNdParams"/> geometry, Max set): one thread per
/// output element (implicitly grouped, grid-stride), its window walked in the cpu op's order (row-major taps, a strictly
/// greater value replaces, so the first maximum wins a tie and a NaN never does unless first); the flattened index in
/// the unpadded input, plane offset included, as float. Storage order 1 reports the spatial part column-major.
/// </summary>
public sealed class MaxPoolIndicesGpu
{
    private readonly Action<Index1D, int, int, PoolNdParams, int, ArrayView<float>, ArrayView<float>> _indices;
    private readonly int _gridThreads;

    public MaxPoolIndicesGpu(Accelerator accelerator)
    {
        _indices = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, PoolNdParams, int, ArrayView<float>, ArrayView<float>>(IndicesKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    public void Forward(in PoolNdParams p, int storageOrder, ArrayView<float> x, ArrayView<float> y)
    {
        if (x.Length != p.InputElements || y.Length != p.OutputElements)
            throw new ArgumentException($"max-pool indices: x has {x.Length} elements (expected {p.InputElements}), y {y.Length} (expected {p.OutputElements})");
        if (storageOrder is not (0 or 1)) throw new ArgumentException($"storage_order {storageOrder} (0 or 1)");
        int n = (int)p.OutputElements;
        if (n == 0) return;
        int t = Math.Min(n, _gridThreads);
        _indices(t, n, t, p, storageOrder, x, y);
    }

    private static void IndicesKernel(Index1D index, int n, int stride, PoolNdParams p, int storageOrder, ArrayView<float> x, ArrayView<float> y)
    {
        // Reported strides: row-major, or column-major (axis 0 fastest; leading unit axes of a 1-D / 2-D pool have X = 1,
        // so the first real axis gets stride 1 either way).
        int r0 = p.X1 * p.X2, r1 = p.X2, r2 = 1;
        if (storageOrder != 0) { r0 = 1; r1 = p.X0; r2 = p.X0 * p.X1; }
        int inPlane = p.X0 * p.X1 * p.X2;
        for (int i = index; i < n; i += stride)
        {
            int r = i;
            int o2 = r % p.Y2; r /= p.Y2;
            int o1 = r % p.Y1; r /= p.Y1;
            int o0 = r % p.Y0; int plane = r / p.Y0;
            int s0 = o0 * p.S0 - p.PB0, s1 = o1 * p.S1 - p.PB1, s2 = o2 * p.S2 - p.PB2;
            int planeBase = plane * inPlane;
            float best = float.NegativeInfinity;
            int at = -1;
            for (int w0 = 0; w0 < p.K0; w0++)
            {
                int q0 = s0 + w0 * p.D0;
                if (q0 < 0 || q0 >= p.X0) continue;
                for (int w1 = 0; w1 < p.K1; w1++)
                {
                    int q1 = s1 + w1 * p.D1;
                    if (q1 < 0 || q1 >= p.X1) continue;
                    for (int w2 = 0; w2 < p.K2; w2++)
                    {
                        int q2 = s2 + w2 * p.D2;
                        if (q2 < 0 || q2 >= p.X2) continue;
                        float v = x[planeBase + (q0 * p.X1 + q1) * p.X2 + q2];
                        if (at < 0 || v > best) { best = v; at = q0 * r0 + q1 * r1 + q2 * r2; }
                    }
                }
            }
            y[i] = planeBase + (at < 0 ? 0 : at);
        }
    }
}
