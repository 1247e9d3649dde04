using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Reduce;

/// <summary>
/// Reductions and softmax of the generic ONNX ops on an ILGPU accelerator:
/// <list type="bullet">
/// <item>one thread per output looping over the reduced elements (the innermost reduced axis in the inner loop, so
///   no division there), for reductions shorter than <see cref="GroupedMinCount"/>;</item>
/// <item>explicitly grouped for longer ones: a group of <see cref="GroupSize"/> threads per output strides over the
///   reduced elements, then a shared-memory tree combines the partial results (ReduceMean over 4096 elements is 16
///   elements a thread instead of 4096 on one).</item>
/// <item>LogSumExp in both takes the output's max first and sums exp(x - max).</item>
/// <item>softmax / log-softmax, max-subtracted: one thread per row (outer x inner), three passes over the axis; for
///   axes of <see cref="GroupedMinCount"/> or more (1000 logits of one image), a group per row, its max and sum through
///   the same shared-memory tree.</item>
/// </list>
/// </summary>
public sealed class ReduceGpu
{
    public const int GroupSize = 256;
    public const int GroupedMinCount = 256;
    private readonly Action<Index1D, int, int, ReduceLayout, ArrayView<float>, ArrayView<float>> _perOutput;
    private readonly Action<KernelConfig, int, ReduceLayout, ArrayView<float>, ArrayView<float>>? _grouped;
    private readonly Action<Index1D, int, int, int, int, int, ArrayView<float>, ArrayView<float>> _softmax;
    private readonly Action<KernelConfig, int, int, int, int, ArrayView<float>, ArrayView<float>>? _softmaxGrouped;
    private readonly int _gridThreads;

    public ReduceGpu(Accelerator accelerator)
    {
        _perOutput = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ReduceLayout, ArrayView<float>, ArrayView<float>>(PerOutputKernel);
        // A device with smaller groups than the tree needs keeps the per-output kernel for every size.
        if (accelerator.MaxNumThreadsPerGroup >= GroupSize)
        {
            _grouped = accelerator.LoadStreamKernel<int, ReduceLayout, ArrayView<float>, ArrayView<float>>(GroupedKernel);
            _softmaxGrouped = accelerator.LoadStreamKernel<int, int, int, int, ArrayView<float>, ArrayView<float>>(SoftmaxGroupedKernel);
        }
        _softmax = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, int, int, int, ArrayView<float>, ArrayView<float>>(SoftmaxKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>Queues y[o] = reduce over the reduced elements of x; y has <see cref="ReduceLayout.Outputs"/> elements.</summary>
    public void Reduce(in ReduceLayout layout, ArrayView<float> x, ArrayView<float> y)
    {
        long outputs = layout.Outputs;
        if (y.Length != outputs || x.Length != outputs * layout.Count)
            throw new ArgumentException($"reduce: x has {x.Length} elements, y {y.Length}, for {outputs} outputs of {layout.Count}");
        if (x.Length > int.MaxValue) throw new ArgumentException("reduce: inputs above 2^31 elements are not supported");
        if (outputs == 0) return;
        if (_grouped is not null && layout.Count >= GroupedMinCount)
        {
            int groups = (int)Math.Min(outputs, 65535);
            _grouped(new KernelConfig(groups, GroupSize), (int)outputs, layout, x, y);
            return;
        }
        int t = (int)Math.Min(outputs, _gridThreads);
        _perOutput(t, (int)outputs, t, layout, x, y);
    }

    /// <summary>Queues softmax (log: log-softmax) along the middle axis of x viewed as [outer, d, inner].</summary>
    public void Softmax(int outer, int d, int inner, bool log, ArrayView<float> x, ArrayView<float> y)
    {
        long rows = (long)outer * inner;
        if (x.Length != rows * d || y.Length != x.Length)
            throw new ArgumentException($"softmax: x has {x.Length} elements, y {y.Length}, for [{outer}, {d}, {inner}]");
        if (x.Length > int.MaxValue) throw new ArgumentException("softmax: inputs above 2^31 elements are not supported");
        if (rows == 0 || d == 0) return;
        if (_softmaxGrouped is not null && d >= GroupedMinCount)
        {
            _softmaxGrouped(new KernelConfig((int)Math.Min(rows, 65535), GroupSize), (int)rows, d, inner, log ? 1 : 0, x, y);
            return;
        }
        int t = (int)Math.Min(rows, _gridThreads);
        _softmax(t, (int)rows, t, d, inner, log ? 1 : 0, x, y);
    }

    private static float Init(int kind) => kind == 2 ? float.NegativeInfinity : kind == 3 ? float.PositiveInfinity : kind == 4 ? 1f : 0f;

    /// <summary>
    /// Folds one element in; Max / Min keep a NaN once seen, as the cpu op and numpy do. LogSumExp sums exp(v - shift),
    /// shift being the output's max (see <see cref="Shift"/>).
    /// </summary>
    private static float Accumulate(int kind, float acc, float v, float shift) => kind switch
    {
        2 => float.IsNaN(v) || v > acc ? v : acc,
        3 => float.IsNaN(v) || v < acc ? v : acc,
        4 => acc * v,
        5 or 7 => acc + v * v,
        6 => acc + XMath.Abs(v),
        9 => acc + XMath.Exp(v - shift),
        _ => acc + v,
    };

    /// <summary>
    /// LogSumExp's shift from the output's max, as the cpu op, ONNX Runtime and torch.logsumexp: log(sum(exp(x))) as
    /// written overflows float32 past x = 88.7 and loses the digits of results near zero. An infinite max (or none)
    /// shifts by 0, since exp(inf - inf) is NaN; a NaN max stays NaN.
    /// </summary>
    private static float Shift(float max) => max == float.PositiveInfinity || max == float.NegativeInfinity ? 0f : max;

    /// <summary>Two partial results into one.</summary>
    private static float Combine(int kind, float a, float b) => kind switch
    {
        2 => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : XMath.Max(a, b),
        3 => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : XMath.Min(a, b),
        4 => a * b,
        _ => a + b,
    };

    private static float Finish(int kind, float acc, int count, float shift) => kind switch
    {
        1 => acc / count,
        7 => XMath.Sqrt(acc),
        8 => XMath.Log(acc),
        9 => shift + XMath.Log(acc),
        _ => acc,
    };

    /// <summary>The x offset of output o (its kept coordinates).</summary>
    private static int KeptOffset(int o, ReduceLayout l)
    {
        int r = o, off = 0;
        off += (r % l.K5) * l.A5; r /= l.K5;
        off += (r % l.K4) * l.A4; r /= l.K4;
        off += (r % l.K3) * l.A3; r /= l.K3;
        off += (r % l.K2) * l.A2; r /= l.K2;
        off += (r % l.K1) * l.A1; r /= l.K1;
        return off + r * l.A0;
    }

    /// <summary>The x offset of reduced element q over the reduced axes 0..4 (slot 5 is the caller's inner loop when skip5).</summary>
    private static int ReducedOffset(int q, ReduceLayout l, bool skip5)
    {
        int r = q, off = 0;
        if (!skip5) { off += (r % l.R5) * l.B5; r /= l.R5; }
        off += (r % l.R4) * l.B4; r /= l.R4;
        off += (r % l.R3) * l.B3; r /= l.R3;
        off += (r % l.R2) * l.B2; r /= l.R2;
        off += (r % l.R1) * l.B1; r /= l.R1;
        return off + r * l.B0;
    }

    private static void PerOutputKernel(Index1D index, int outputs, int stride, ReduceLayout l, ArrayView<float> x, ArrayView<float> y)
    {
        int outer = l.R0 * l.R1 * l.R2 * l.R3 * l.R4, count = outer * l.R5;
        for (int o = index; o < outputs; o += stride)
        {
            int b = KeptOffset(o, l);
            float shift = 0f;
            if (l.Kind == 9) shift = Shift(Fold(2, float.NegativeInfinity, 0f, b, outer, l, x));
            y[o] = Finish(l.Kind, Fold(l.Kind, Init(l.Kind), shift, b, outer, l, x), count, shift);
        }
    }

    /// <summary>Folds the reduced elements of the output at x offset b into acc, the innermost reduced axis in the inner loop.</summary>
    private static float Fold(int kind, float acc, float shift, int b, int outer, ReduceLayout l, ArrayView<float> x)
    {
        for (int q = 0; q < outer; q++)
        {
            int p = b + ReducedOffset(q, l, true);
            for (int j = 0; j < l.R5; j++, p += l.B5) acc = Accumulate(kind, acc, x[p], shift);
        }
        return acc;
    }

    /// <summary>One group per output (grid-stride over outputs, the whole group together, so the barriers stay uniform).</summary>
    private static void GroupedKernel(int outputs, ReduceLayout l, ArrayView<float> x, ArrayView<float> y)
    {
        var partial = SharedMemory.Allocate<float>(GroupSize);
        int tid = Group.IdxX, size = Group.DimX;
        int count = l.R0 * l.R1 * l.R2 * l.R3 * l.R4 * l.R5;
        for (int o = Grid.IdxX; o < outputs; o += Grid.DimX)
        {
            int b = KeptOffset(o, l);
            float shift = 0f;
            if (l.Kind == 9) // uniform across the group: every thread takes the barriers inside
            {
                float m = float.NegativeInfinity;
                for (int q = tid; q < count; q += size) m = Accumulate(2, m, x[b + ReducedOffset(q, l, false)], 0f);
                shift = Shift(GroupAll(partial, tid, size, 2, m));
            }
            float acc = Init(l.Kind);
            for (int q = tid; q < count; q += size) acc = Accumulate(l.Kind, acc, x[b + ReducedOffset(q, l, false)], shift);
            acc = GroupAll(partial, tid, size, l.Kind, acc);
            if (tid == 0) y[o] = Finish(l.Kind, acc, count, shift);
        }
    }

    private static void SoftmaxKernel(Index1D index, int rows, int stride, int d, int inner, int log, ArrayView<float> x, ArrayView<float> y)
    {
        for (int r = index; r < rows; r += stride)
        {
            int o = r / inner, j = r % inner;
            int b = o * d * inner + j;
            float m = float.NegativeInfinity, s = 0f;
            for (int c = 0, p = b; c < d; c++, p += inner) m = XMath.Max(m, x[p]);
            for (int c = 0, p = b; c < d; c++, p += inner) s += XMath.Exp(x[p] - m);
            float logS = XMath.Log(s);
            for (int c = 0, p = b; c < d; c++, p += inner)
            {
                float v = x[p] - m;
                y[p] = log != 0 ? v - logS : XMath.Exp(v) / s;
            }
        }
    }

    /// <summary>Combines the group's partial values of a reduction kind (<see cref="Combine"/>) into partial[0]; every thread reads it after.</summary>
    private static float GroupAll(ArrayView<float> partial, int tid, int size, int kind, float v)
    {
        partial[tid] = v;
        Group.Barrier();
        for (int s = size / 2; s > 0; s /= 2)
        {
            if (tid < s) partial[tid] = Combine(kind, partial[tid], partial[tid + s]);
            Group.Barrier();
        }
        float r = partial[0];
        Group.Barrier(); // read by all before the next use overwrites it
        return r;
    }

    /// <summary>One group per row (grid-stride over rows, the whole group together).</summary>
    private static void SoftmaxGroupedKernel(int rows, int d, int inner, int log, ArrayView<float> x, ArrayView<float> y)
    {
        var partial = SharedMemory.Allocate<float>(GroupSize);
        int tid = Group.IdxX, size = Group.DimX;
        for (int r = Grid.IdxX; r < rows; r += Grid.DimX)
        {
            int b = r / inner * d * inner + r % inner;
            float m = float.NegativeInfinity, s = 0f;
            for (int c = tid; c < d; c += size) m = XMath.Max(m, x[b + c * inner]);
            m = GroupAll(partial, tid, size, 2, m);
            for (int c = tid; c < d; c += size) s += XMath.Exp(x[b + c * inner] - m);
            s = GroupAll(partial, tid, size, 0, s);
            float logS = XMath.Log(s);
            for (int c = tid; c < d; c += size)
            {
                int p = b + c * inner;
                float v = x[p] - m;
                y[p] = log != 0 ? v - logS : XMath.Exp(v) / s;
            }
        }
    }
}
