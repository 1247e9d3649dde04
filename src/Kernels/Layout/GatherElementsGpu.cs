using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Layout;

/// <summary>
/// GatherElements' geometry: the output (= indices) dims D, right-aligned to <see cref="MaxRank"/>, and the data's
/// strides S along them; on axis slot <see cref="Axis"/> the coordinate is the index read (of <see cref="Length"/>).
/// </summary>
public struct GatherElementsLayout
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;
    public int S0, S1, S2, S3, S4, S5;
    public int Axis, Length;

    public readonly long Count => (long)D0 * D1 * D2 * D3 * D4 * D5;

    /// <summary>
    /// From the indices' dims, the data's dims and the gather axis: axes of size 1 other than the gather axis fold away,
    /// neighbours contiguous in x merge; null when more than <see cref="MaxRank"/> remain. Tensors above 2^31 elements are an ArgumentException.
    /// </summary>
    public static GatherElementsLayout? Create(ReadOnlySpan<int> indexDims, ReadOnlySpan<int> dataDims, int axis)
    {
        long data = 1, count = 1;
        foreach (int e in dataDims) data *= e;
        foreach (int e in indexDims) count *= e;
        if (data > int.MaxValue || count > int.MaxValue) throw new ArgumentException("gather_elements: tensors above 2^31 elements are not supported");
        var kept = new List<(int Dim, long Stride, bool Axis)>();
        long stride = 1;
        var strides = new long[dataDims.Length];
        for (int a = dataDims.Length - 1; a >= 0; a--) { strides[a] = stride; stride *= dataDims[a]; }
        for (int a = 0; a < indexDims.Length; a++)
        {
            if (indexDims[a] == 1 && a != axis) continue;
            // Neighbouring non-gather axes that are contiguous in x as the indices walk them merge into one.
            if (a != axis && kept.Count > 0 && !kept[^1].Axis && kept[^1].Stride == strides[a] * indexDims[a])
                kept[^1] = (kept[^1].Dim * indexDims[a], strides[a], false);
            else kept.Add((indexDims[a], strides[a], a == axis));
        }
        if (kept.Count > MaxRank) return null;
        Span<int> d = stackalloc int[MaxRank], s = stackalloc int[MaxRank];
        d.Fill(1);
        s.Clear();
        int off = MaxRank - kept.Count, slot = -1;
        for (int i = 0; i < kept.Count; i++)
        {
            d[off + i] = kept[i].Dim;
            s[off + i] = (int)kept[i].Stride;
            if (kept[i].Axis) slot = off + i;
        }
        return new GatherElementsLayout
        {
            D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5],
            S0 = s[0], S1 = s[1], S2 = s[2], S3 = s[3], S4 = s[4], S5 = s[5],
            Axis = slot, Length = dataDims[axis],
        };
    }
}

/// <summary>
/// GatherElements on an ILGPU accelerator: one thread per output element (implicitly grouped, grid-stride). The
/// indices are a run-time tensor, so a bad one can only be seen on the device: the kernel writes NaN there and raises
/// a flag, which the launcher reads back (one synchronisation per run) to throw the cpu op's ArgumentException.
/// </summary>
public sealed class GatherElementsGpu : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly Action<Index1D, int, int, GatherElementsLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>> _gather;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _flag;
    private readonly Lock _lock = new();
    private readonly int _gridThreads;

    public GatherElementsGpu(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _gather = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, GatherElementsLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>>(GatherKernel);
        _flag = accelerator.Allocate1D<int>(1);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>y[c] = x[c with the axis coordinate replaced by indices[c]] (negative indices count from the end).</summary>
    public void Gather(in GatherElementsLayout l, ArrayView<float> x, ArrayView<float> indices, ArrayView<float> y, string what)
    {
        long n = l.Count;
        if (indices.Length != n || y.Length != n) throw new ArgumentException($"{what}: indices have {indices.Length} elements, y {y.Length}, for {n}");
        if (n == 0) return;
        lock (_lock)
        {
            _flag.View.MemSetToZero(_accelerator.DefaultStream);
            int t = (int)Math.Min(n, _gridThreads);
            _gather(t, (int)n, t, l, x, indices, y, _flag.View);
            var flag = new int[1];
            _flag.View.CopyToCPU(_accelerator.DefaultStream, flag);
            _accelerator.DefaultStream.Synchronize();
            if (flag[0] != 0) throw new ArgumentException($"{what}: an index is out of range for an axis of {l.Length}");
        }
    }

    private static void GatherKernel(Index1D index, int n, int stride, GatherElementsLayout l, ArrayView<float> x, ArrayView<float> ind,
        ArrayView<float> y, ArrayView<int> flag)
    {
        for (int i = index; i < n; i += stride)
        {
            float f = ind[i];
            // Truncated towards zero as the cpu op's conversion; NaN fails both tests.
            if (!(f > -l.Length - 1 && f < l.Length))
            {
                y[i] = float.NaN;
                flag[0] = 1;
                continue;
            }
            int v = (int)f;
            if (v < 0) v += l.Length;
            int r = i, off = 0, c;
            c = r % l.D5; r /= l.D5; off += (l.Axis == 5 ? v : c) * l.S5;
            c = r % l.D4; r /= l.D4; off += (l.Axis == 4 ? v : c) * l.S4;
            c = r % l.D3; r /= l.D3; off += (l.Axis == 3 ? v : c) * l.S3;
            c = r % l.D2; r /= l.D2; off += (l.Axis == 2 ? v : c) * l.S2;
            c = r % l.D1; r /= l.D1; off += (l.Axis == 1 ? v : c) * l.S1;
            off += (l.Axis == 0 ? v : r) * l.S0;
            y[i] = x[off];
        }
    }

    public void Dispose() => _flag.Dispose();
}
