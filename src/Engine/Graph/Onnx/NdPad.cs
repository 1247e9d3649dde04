namespace GpuAnomaly.Engine;

/// <summary>ONNX Pad's modes.</summary>
public enum PadMode { Constant, Edge, Reflect, Wrap }

/// <summary>Pad modes that read x outside its bounds (edge, reflect, wrap): each output index maps to one input index per axis.</summary>
public static class NdPad
{
    /// <summary>The input index output index <paramref name="o"/> of an axis of size <paramref name="d"/> reads (pads before: <paramref name="begin"/>).</summary>
    public static long Source(PadMode mode, long o, long begin, long d)
    {
        long p = o - begin;
        switch (mode)
        {
            case PadMode.Edge: return Math.Clamp(p, 0, d - 1);
            case PadMode.Wrap: return (p % d + d) % d;
            case PadMode.Reflect:
                // numpy's 'reflect' (the edge is not repeated): a period of 2 (d - 1), repeated for pads wider than the axis.
                if (d == 1) return 0;
                long period = 2 * (d - 1), m = (p % period + period) % period;
                return m < d ? m : period - m;
            default: throw new ArgumentException($"pad mode {mode} reads no input outside it");
        }
    }

    public static void Pad<T>(ReadOnlySpan<T> x, int[] xDims, long[] begin, PadMode mode, Span<T> y, int[] yDims) where T : unmanaged
    {
        int rank = xDims.Length;
        if (y.Length == 0) return;
        if (rank == 0)
        {
            y[0] = x[0];
            return;
        }
        // Per axis, the input offset (index * stride) of each output index.
        var sx = NdIndex.Strides(xDims);
        var src = new long[rank][];
        for (int a = 0; a < rank; a++)
        {
            src[a] = new long[yDims[a]];
            for (int o = 0; o < yDims[a]; o++) src[a][o] = Source(mode, o, begin[a], xDims[a]) * sx[a];
        }
        var idx = new int[rank];
        int n = yDims[rank - 1];
        var last = src[rank - 1];
        for (long o = 0; o < y.Length; o += n)
        {
            long rowBase = 0;
            for (int a = 0; a < rank - 1; a++) rowBase += src[a][idx[a]];
            for (int j = 0; j < n; j++) y[(int)(o + j)] = x[(int)(rowBase + last[j])];
            for (int a = rank - 2; a >= 0 && ++idx[a] == yDims[a]; a--) idx[a] = 0;
        }
    }
}
