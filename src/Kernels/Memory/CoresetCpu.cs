using System.Numerics;
using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Memory;

/// <summary>
/// Greedy k-center coreset on the cpu (see <see cref="CoresetParams"/>): the projection is one SGEMM, then each
/// of the Count iterations streams the projected features once, updating every point's min squared distance to
/// the newest pick (direct difference form, as the reference, so that near-ties are decided the same way) and
/// finding the farthest point. Large inputs split into fixed point chunks run in parallel; the chunks' maxima
/// merge in chunk order, so the pick (ties by the lower index) does not depend on the thread count.
/// </summary>
public static class CoresetCpu
{
    /// <summary>Points per parallel chunk; also the size below which one thread does the whole pass.</summary>
    private const int Chunk = 4096;

    public static void Forward(in CoresetParams p, ReadOnlySpan<float> features, ReadOnlySpan<float> projection, Span<int> selected, Span<float> minDistances)
    {
        p.CheckLengths(features.Length, projection.Length, selected.Length, minDistances.Length);
        int n = p.N, dims = p.Dims;
        float[] y;
        if (p.Projected > 0)
        {
            y = new float[(long)n * dims];
            Sgemm.Multiply(n, dims, p.D, features, p.D, projection, dims, y, dims);
        }
        else y = features.ToArray();
        var min = new float[n];
        int chunks = (n + Chunk - 1) / Chunk;
        var far = new float[chunks];
        var farIdx = new int[chunks];
        bool parallel = chunks > 1 && (long)n * dims >= 1L << 16;
        int pick = p.Start;
        for (int t = 0; t < p.Count; t++)
        {
            selected[t] = pick;
            if (t == p.Count - 1 && t > 0) { Update(y, dims, pick, min, 0, n, first: false, out _, out _); break; }
            int pk = pick; bool first = t == 0;
            if (parallel)
                CpuParallel.For(0, chunks, c => Update(y, dims, pk, min, c * Chunk, Math.Min(n, (c + 1) * Chunk), first, out far[c], out farIdx[c]));
            else
                for (int c = 0; c < chunks; c++) Update(y, dims, pk, min, c * Chunk, Math.Min(n, (c + 1) * Chunk), first, out far[c], out farIdx[c]);
            float best = float.NegativeInfinity; int next = 0;
            for (int c = 0; c < chunks; c++)
                if (far[c] > best) { best = far[c]; next = farIdx[c]; }
            pick = next;
        }
        min.CopyTo(minDistances);
    }

    /// <summary>Points [i0, i1): min = min(min, |y_i - y_pick|^2) (min = the distance when first), and the chunk's farthest point.</summary>
    private static void Update(float[] y, int dims, int pick, float[] min, int i0, int i1, bool first, out float far, out int farIdx)
    {
        var q = new ReadOnlySpan<float>(y, pick * dims, dims);
        far = float.NegativeInfinity; farIdx = 0;
        for (int i = i0; i < i1; i++)
        {
            float s = Distance(new ReadOnlySpan<float>(y, i * dims, dims), q);
            float m = first || s < min[i] ? s : min[i];
            min[i] = m;
            if (m > far) { far = m; farIdx = i; }
        }
    }

    /// <summary>Squared L2 of a - b: two vector accumulators (unrolled by hand), then the scalar tail.</summary>
    private static float Distance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int w = Vector<float>.Count, j = 0;
        var va = MemoryMarshal.Cast<float, Vector<float>>(a);
        var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
        Vector<float> s0 = Vector<float>.Zero, s1 = Vector<float>.Zero;
        int v = 0;
        for (; v + 1 < va.Length; v += 2)
        {
            var e0 = va[v] - vb[v];
            var e1 = va[v + 1] - vb[v + 1];
            s0 += e0 * e0;
            s1 += e1 * e1;
        }
        if (v < va.Length) { var e = va[v] - vb[v]; s0 += e * e; }
        float s = Vector.Sum(s0 + s1);
        for (j = va.Length * w; j < a.Length; j++) { float e = a[j] - b[j]; s += e * e; }
        return s;
    }
}
