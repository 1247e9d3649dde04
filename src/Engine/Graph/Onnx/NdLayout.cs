using System.Numerics;

namespace GpuAnomaly.Engine;

/// <summary>Input <paramref name="index"/> of an op as a span (a device tensor's host memory, or a host array).</summary>
public delegate ReadOnlySpan<T> InputSpan<T>(int index);

/// <summary>
/// Data-movement and broadcasting kernels of the ONNX ops on row-major arrays, generic so that the cpu ops (float) and
/// the host evaluator (double) share them. Shapes are validated by the callers (the ops' InferShape, the evaluator).
/// </summary>
public static class NdLayout
{
    /// <summary>y = a (op) b with numpy broadcasting; y has the broadcast shape <paramref name="yDims"/>.</summary>
    public static void Binary<T>(BinaryKind k, ReadOnlySpan<T> a, int[] aDims, ReadOnlySpan<T> b, int[] bDims, Span<T> y, int[] yDims)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a.Length == y.Length && b.Length == y.Length)
        {
            for (int i = 0; i < y.Length; i++) y[i] = NdMath.Binary(k, a[i], b[i]);
            return;
        }
        if (b.Length == 1 && a.Length == y.Length)
        {
            T s = b[0];
            for (int i = 0; i < y.Length; i++) y[i] = NdMath.Binary(k, a[i], s);
            return;
        }
        var sa = NdIndex.BroadcastStrides(aDims, yDims);
        var sb = NdIndex.BroadcastStrides(bDims, yDims);
        int rank = yDims.Length;
        long ia = rank == 0 ? 0 : sa[rank - 1], ib = rank == 0 ? 0 : sb[rank - 1];
        var idx = new int[rank];
        long total = y.Length, n = rank == 0 ? 1 : yDims[rank - 1];
        if (n == 0) return;
        long oa = 0, ob = 0;
        for (long o = 0; o < total; o += n)
        {
            long pa = oa, pb = ob;
            for (long j = 0; j < n; j++, pa += ia, pb += ib) y[(int)(o + j)] = NdMath.Binary(k, a[(int)pa], b[(int)pb]);
            Advance(idx, yDims, rank - 2, sa, sb, ref oa, ref ob);
        }
    }

    /// <summary>Copies x broadcast to <paramref name="yDims"/> (ONNX Expand).</summary>
    public static void Expand<T>(ReadOnlySpan<T> x, int[] xDims, Span<T> y, int[] yDims) where T : unmanaged
    {
        var sx = NdIndex.BroadcastStrides(xDims, yDims);
        Gather(x, sx, 0, y, yDims);
    }

    /// <summary>
    /// y[i] = x[base + sum(idx_k * strides_k)] over y's shape: transpose, slice and expand are this walk with other
    /// strides (strides may be negative or 0).
    /// </summary>
    public static void Gather<T>(ReadOnlySpan<T> x, long[] strides, long baseOffset, Span<T> y, int[] yDims) where T : unmanaged
    {
        int rank = yDims.Length;
        if (rank == 0)
        {
            y[0] = x[(int)baseOffset];
            return;
        }
        long n = yDims[rank - 1];
        if (n == 0 || y.Length == 0) return;
        long step = strides[rank - 1];
        var idx = new int[rank];
        long off = baseOffset, unused = 0;
        var none = new long[rank];
        for (long o = 0; o < y.Length; o += n)
        {
            long p = off;
            if (step == 1) x.Slice((int)p, (int)n).CopyTo(y.Slice((int)o, (int)n));
            else for (long j = 0; j < n; j++, p += step) y[(int)(o + j)] = x[(int)p];
            Advance(idx, yDims, rank - 2, strides, none, ref off, ref unused);
        }
    }

    public static void Transpose<T>(ReadOnlySpan<T> x, int[] xDims, int[] perm, Span<T> y) where T : unmanaged
    {
        var sx = NdIndex.Strides(xDims);
        var yDims = new int[perm.Length];
        var s = new long[perm.Length];
        for (int i = 0; i < perm.Length; i++)
        {
            yDims[i] = xDims[perm[i]];
            s[i] = sx[perm[i]];
        }
        Gather(x, s, 0, y, yDims);
    }

    /// <summary>Strided slice: per axis a start (already clamped) and a step (non-zero); y's shape is the slice's.</summary>
    public static void Slice<T>(ReadOnlySpan<T> x, int[] xDims, long[] starts, long[] steps, Span<T> y, int[] yDims) where T : unmanaged
    {
        var sx = NdIndex.Strides(xDims);
        long baseOffset = 0;
        var s = new long[xDims.Length];
        for (int i = 0; i < xDims.Length; i++)
        {
            baseOffset += starts[i] * sx[i];
            s[i] = steps[i] * sx[i];
        }
        if (y.Length == 0) return;
        Gather(x, s, baseOffset, y, yDims);
    }

    /// <summary>Concatenation along <paramref name="axis"/> of inputs that agree on every other axis.</summary>
    public static void Concat<T>(InputSpan<T> xs, IReadOnlyList<int[]> dims, int axis, Span<T> y) where T : unmanaged
    {
        long outer = 1;
        for (int i = 0; i < axis; i++) outer *= dims[0][i];
        var rows = new long[dims.Count];
        long yRow = 0;
        for (int k = 0; k < dims.Count; k++)
        {
            rows[k] = outer == 0 ? 0 : NdIndex.Elements(dims[k]) / outer;
            yRow += rows[k];
        }
        for (long o = 0; o < outer; o++)
        {
            long dst = o * yRow;
            for (int k = 0; k < dims.Count; k++)
            {
                xs(k).Slice((int)(o * rows[k]), (int)rows[k]).CopyTo(y.Slice((int)dst, (int)rows[k]));
                dst += rows[k];
            }
        }
    }

    /// <summary>Constant padding; <paramref name="begin"/> may be negative (a crop), as ONNX Pad allows.</summary>
    public static void Pad<T>(ReadOnlySpan<T> x, int[] xDims, long[] begin, T value, Span<T> y, int[] yDims) where T : unmanaged
    {
        y.Fill(value);
        int rank = xDims.Length;
        // The part of x that lands inside y: per axis, x indices [lo, hi).
        var lo = new long[rank];
        var cnt = new int[rank];
        long dstBase = 0;
        var sy = NdIndex.Strides(yDims);
        var sx = NdIndex.Strides(xDims);
        long srcBase = 0;
        for (int i = 0; i < rank; i++)
        {
            lo[i] = Math.Max(0, -begin[i]);
            long hi = Math.Min(xDims[i], yDims[i] - begin[i]);
            cnt[i] = (int)Math.Max(0, hi - lo[i]);
            if (cnt[i] == 0) return;
            srcBase += lo[i] * sx[i];
            dstBase += (lo[i] + begin[i]) * sy[i];
        }
        if (rank == 0)
        {
            y[0] = x[0];
            return;
        }
        var idx = new int[rank];
        long src = srcBase, dst = dstBase;
        long total = NdIndex.Elements(cnt), n = cnt[rank - 1];
        for (long o = 0; o < total; o += n)
        {
            x.Slice((int)src, (int)n).CopyTo(y.Slice((int)dst, (int)n));
            Advance(idx, cnt, rank - 2, sx, sy, ref src, ref dst);
        }
    }

    /// <summary>ONNX Gather: indices (already made non-negative) select slices of x along <paramref name="axis"/>.</summary>
    public static void Take<T>(ReadOnlySpan<T> x, int[] xDims, int axis, ReadOnlySpan<long> indices, Span<T> y) where T : unmanaged
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= xDims[i];
        for (int i = axis + 1; i < xDims.Length; i++) inner *= xDims[i];
        long d = xDims[axis];
        int m = indices.Length;
        for (long o = 0; o < outer; o++)
            for (int j = 0; j < m; j++)
                x.Slice((int)((o * d + indices[j]) * inner), (int)inner).CopyTo(y.Slice((int)((o * m + j) * inner), (int)inner));
    }

    /// <summary>Odometer step over axes 0..<paramref name="ax"/> that keeps two running offsets in step.</summary>
    private static void Advance(int[] idx, int[] dims, int ax, long[] sa, long[] sb, ref long oa, ref long ob)
    {
        for (; ax >= 0; ax--)
        {
            idx[ax]++;
            oa += sa[ax];
            ob += sb[ax];
            if (idx[ax] < dims[ax]) return;
            oa -= sa[ax] * dims[ax];
            ob -= sb[ax] * dims[ax];
            idx[ax] = 0;
        }
    }
}
