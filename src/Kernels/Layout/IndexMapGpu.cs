using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Layout;

/// <summary>
/// The data-movement kernel of the generic ONNX layout ops (transpose, slice, pad, concat, gather, expand): one
/// grid-stride kernel over an <see cref="IndexMap"/>. Consecutive threads take consecutive destination elements, so
/// stores coalesce; reads coalesce where the map keeps the innermost axis contiguous.
/// </summary>
public sealed class IndexMapGpu
{
    private readonly Action<Index1D, int, int, IndexMap, ArrayView<float>, ArrayView<int>, ArrayView<float>> _copy;
    private readonly int _gridThreads;

    public IndexMapGpu(Accelerator accelerator)
    {
        _copy = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, IndexMap, ArrayView<float>, ArrayView<int>, ArrayView<float>>(CopyKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>
    /// Queues y[map's destinations] = x[map's sources]; <paramref name="table"/> holds the table axis' source
    /// coordinates (empty when the map has none). Every source offset the map can form must lie in x and every
    /// destination in y: the ops that build maps guarantee it (their shapes are validated), this checks the ends.
    /// </summary>
    public void Copy(in IndexMap map, ArrayView<float> x, ArrayView<int> table, ArrayView<float> y)
    {
        long n = map.Count;
        if (n == 0) return;
        if (n > int.MaxValue) throw new ArgumentException($"index map of {n} elements: the kernel takes fewer than 2^31");
        if (map.TableAxis >= 0 && table.Length < DimOf(map, map.TableAxis))
            throw new ArgumentException($"index map: a table of {table.Length} entries for an axis of {DimOf(map, map.TableAxis)}");
        long lastDst = map.DstBase + (long)(map.D0 - 1) * map.T0 + (long)(map.D1 - 1) * map.T1 + (long)(map.D2 - 1) * map.T2
                       + (long)(map.D3 - 1) * map.T3 + (long)(map.D4 - 1) * map.T4 + (long)(map.D5 - 1) * map.T5;
        if (map.DstBase < 0 || lastDst >= y.Length || x.Length == 0 && map.Mode != OutsideMode.Constant)
            throw new ArgumentException($"index map writes up to element {lastDst} of an output of {y.Length}");
        int t = (int)Math.Min(n, _gridThreads);
        _copy(t, (int)n, t, map, x, table, y);
    }

    private static int DimOf(in IndexMap m, int axis) => axis switch { 0 => m.D0, 1 => m.D1, 2 => m.D2, 3 => m.D3, 4 => m.D4, _ => m.D5 };

    private static void CopyKernel(Index1D index, int n, int stride, IndexMap m, ArrayView<float> x, ArrayView<int> table, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            // Per axis: destination offset, source coordinate (negative: outside, a constant), source offset.
            int r = i, k, c;
            k = r % m.D5; r /= m.D5; int dst = m.DstBase + k * m.T5; c = Coord(5, k, m.O5, m.P5, m.N5, m, table); bool outside = c < 0; int src = m.SrcBase + c * m.S5;
            k = r % m.D4; r /= m.D4; dst += k * m.T4; c = Coord(4, k, m.O4, m.P4, m.N4, m, table); outside |= c < 0; src += c * m.S4;
            k = r % m.D3; r /= m.D3; dst += k * m.T3; c = Coord(3, k, m.O3, m.P3, m.N3, m, table); outside |= c < 0; src += c * m.S3;
            k = r % m.D2; r /= m.D2; dst += k * m.T2; c = Coord(2, k, m.O2, m.P2, m.N2, m, table); outside |= c < 0; src += c * m.S2;
            k = r % m.D1; r /= m.D1; dst += k * m.T1; c = Coord(1, k, m.O1, m.P1, m.N1, m, table); outside |= c < 0; src += c * m.S1;
            dst += r * m.T0; c = Coord(0, r, m.O0, m.P0, m.N0, m, table); outside |= c < 0; src += c * m.S0;
            y[dst] = outside ? m.Value : x[src];
        }
    }

    /// <summary>The source coordinate of iteration coordinate k on one axis, after the mode; -1 when it reads the constant.</summary>
    private static int Coord(int axis, int k, int o, int p, int n, IndexMap m, ArrayView<int> table)
    {
        int c = axis == m.TableAxis ? table[k] : o + k * p;
        return c >= 0 && c < n ? c : IndexMaps.Outside(c, n, m.Mode);
    }
}
