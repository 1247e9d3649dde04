using System.Numerics;

namespace GpuAnomaly.Engine;

public enum ReduceKind { Sum, Mean, Max, Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp }

/// <summary>Reductions, softmax and batched matmul over row-major arrays, generic over float and double (see <see cref="NdLayout"/>).</summary>
public static class NdReduce
{
    /// <summary>Reduces the axes flagged in <paramref name="reduced"/>; y holds one element per kept index (keepdims is only a shape).</summary>
    public static void Reduce<T>(ReduceKind k, ReadOnlySpan<T> x, int[] xDims, bool[] reduced, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rank = xDims.Length;
        var yDims = new int[rank];
        for (int i = 0; i < rank; i++) yDims[i] = reduced[i] ? 1 : xDims[i];
        var sy = NdIndex.Strides(yDims);
        long count = 1;
        for (int i = 0; i < rank; i++) if (reduced[i]) count *= xDims[i];
        T init = k switch { ReduceKind.Max => T.NegativeInfinity, ReduceKind.Min => T.PositiveInfinity, ReduceKind.Prod => T.One, _ => T.Zero };
        y.Fill(init);
        // LogSumExp is shifted by each output's max, as ONNX Runtime and torch.logsumexp do: log(sum(exp(x))) as
        // written overflows float32 past x = 88.7 and loses the digits of results near zero (log(exp(1e-5))).
        T[]? shift = null;
        if (k == ReduceKind.LogSumExp)
        {
            shift = new T[y.Length];
            Reduce(ReduceKind.Max, x, xDims, reduced, shift);
            // An infinite max (or no elements) shifts by 0: exp(inf - inf) would be NaN; the sum then gives +-inf.
            for (int i = 0; i < shift.Length; i++) if (T.IsInfinity(shift[i])) shift[i] = T.Zero;
        }
        var idx = new int[rank];
        for (long i = 0; i < x.Length; i++)
        {
            long o = 0;
            for (int a = 0; a < rank; a++) if (!reduced[a]) o += idx[a] * sy[a];
            T v = x[(int)i], acc = y[(int)o];
            y[(int)o] = k switch
            {
                ReduceKind.Max => T.IsNaN(v) || v > acc ? v : acc,
                ReduceKind.Min => T.IsNaN(v) || v < acc ? v : acc,
                ReduceKind.Prod => acc * v,
                ReduceKind.SumSquare or ReduceKind.L2 => acc + v * v,
                ReduceKind.L1 => acc + T.Abs(v),
                ReduceKind.LogSumExp => acc + T.Exp(v - shift![o]),
                _ => acc + v,
            };
            for (int a = rank - 1; a >= 0; a--)
            {
                if (++idx[a] < xDims[a]) break;
                idx[a] = 0;
            }
        }
        T n = T.CreateTruncating(count);
        for (int i = 0; i < y.Length; i++)
            y[i] = k switch
            {
                ReduceKind.Mean => y[i] / n,
                ReduceKind.L2 => T.Sqrt(y[i]),
                ReduceKind.LogSum => T.Log(y[i]),
                ReduceKind.LogSumExp => shift![i] + T.Log(y[i]),
                _ => y[i],
            };
    }

    /// <summary>Softmax (or log-softmax) along one axis, max-subtracted.</summary>
    public static void Softmax<T>(ReadOnlySpan<T> x, int[] xDims, int axis, bool log, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= xDims[i];
        for (int i = axis + 1; i < xDims.Length; i++) inner *= xDims[i];
        int d = xDims.Length == 0 ? 1 : xDims[axis];
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++)
            {
                long b = o * d * inner + j;
                T m = T.NegativeInfinity, s = T.Zero;
                for (int c = 0; c < d; c++) m = T.Max(m, x[(int)(b + c * inner)]);
                for (int c = 0; c < d; c++) s += T.Exp(x[(int)(b + c * inner)] - m);
                for (int c = 0; c < d; c++)
                {
                    T v = x[(int)(b + c * inner)] - m;
                    y[(int)(b + c * inner)] = log ? v - T.Log(s) : T.Exp(v) / s;
                }
            }
    }

    /// <summary>numpy matmul: a [..., M, K] x b [..., K, N] with broadcast batch axes (1-D operands promoted by the caller).</summary>
    public static void MatMul<T>(ReadOnlySpan<T> a, int[] aDims, ReadOnlySpan<T> b, int[] bDims, Span<T> y, int[] yDims) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int m = aDims[^2], kk = aDims[^1], n = bDims[^1];
        var batch = yDims[..^2];
        var sa = NdIndex.BroadcastStrides(aDims[..^2], batch);
        var sb = NdIndex.BroadcastStrides(bDims[..^2], batch);
        long batches = NdIndex.Elements(batch);
        var idx = new int[batch.Length];
        for (long t = 0; t < batches; t++)
        {
            long oa = 0, ob = 0;
            for (int i = 0; i < batch.Length; i++)
            {
                oa += idx[i] * sa[i];
                ob += idx[i] * sb[i];
            }
            long baseA = oa * m * kk, baseB = ob * kk * n, baseY = t * m * n;
            for (int i = 0; i < m; i++)
            {
                var row = y.Slice((int)(baseY + (long)i * n), n);
                row.Clear();
                for (int p = 0; p < kk; p++)
                {
                    T av = a[(int)(baseA + (long)i * kk + p)];
                    var brow = b.Slice((int)(baseB + (long)p * n), n);
                    for (int j = 0; j < n; j++) row[j] += av * brow[j];
                }
            }
            for (int i = batch.Length - 1; i >= 0; i--)
            {
                if (++idx[i] < batch[i]) break;
                idx[i] = 0;
            }
        }
    }
}
