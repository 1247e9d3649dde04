using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Attention;

/// <summary>Launch shape of <see cref="WindowAttentionGpu"/>: Tq queries per thread group, ceil(d/8) threads per query.</summary>
public struct WindowAttentionTiles
{
    /// <summary>Queries per thread group (a power of two, at most 64).</summary>
    public int Tq;
    /// <summary>ceil(d / 8): a thread owns 8 output channels of one query.</summary>
    public int Chunks;
}

/// <summary>
/// Fused <see cref="WindowAttentionParams"/> attention on an ILGPU accelerator, flash-attention style so that any group
/// size works (ws x ws windows, SparseViT groups of hundreds of tokens, global attention). One thread group per
/// (batch, group, head, tile of Tq queries): q of the tile is gathered straight from qkv into shared memory (scaled),
/// then key tiles of 32 tokens stream through shared memory (k and v, loaded as contiguous d-vectors: coalesced);
/// the Tq x 32 scores (with bias and mask) stay in shared memory, a running max and sum per query row give a stable
/// online softmax, and each thread accumulates 8 output channels of one query in registers (rescaled by
/// exp(m_old - m_new) at every tile). The output rows are scattered back into token order; nothing else is written.
/// Head dim up to 64; shared memory ~42 KB per group.
/// </summary>
public sealed class WindowAttentionGpu
{
    public const int MaxHeadDim = 64;
    private const int TqMax = 64;
    /// <summary>Keys per tile (a multiple of 4: each thread scores 4 keys at a time).</summary>
    private const int Tk = 32;
    private const int MaxThreads = 256;

    private readonly Accelerator _accelerator;
    private readonly Action<KernelConfig, WindowAttentionParams, WindowAttentionTiles, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _kernel;

    public WindowAttentionGpu(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _kernel = accelerator.LoadStreamKernel<WindowAttentionParams, WindowAttentionTiles, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel);
    }

    /// <summary>The launch shape for <paramref name="p"/>: Tq = the group size rounded up to a power of two, at most 64, fewer when the group of threads would exceed 256.</summary>
    public WindowAttentionTiles TilesFor(in WindowAttentionParams p)
    {
        int chunks = (p.HeadDim + 7) / 8;
        int maxThreads = Math.Min(MaxThreads, _accelerator.MaxNumThreadsPerGroup);
        int tq = 1;
        while (tq < TqMax && tq < p.GroupSize) tq *= 2;
        while (tq > 1 && tq * chunks > maxThreads) tq /= 2;
        return new WindowAttentionTiles { Tq = tq, Chunks = chunks };
    }

    /// <summary>
    /// Queues the attention on the default stream; does not synchronize. padQkv [3C] (may be empty when the map needs
    /// no padding), biasTable [(2ws-1)^2, heads] (empty when HasRelativeBias = 0); see <see cref="WindowAttentionParams"/>.
    /// </summary>
    public void Forward(in WindowAttentionParams p, ArrayView<float> qkv, ArrayView<float> padQkv, ArrayView<float> biasTable, ArrayView<float> y)
    {
        p.CheckLengths(qkv.Length, padQkv.Length, biasTable.Length, y.Length);
        if (p.HeadDim > MaxHeadDim)
            throw new ArgumentException($"window_attention gpu: head dim {p.HeadDim} above {MaxHeadDim} is not supported ({p})");
        var tiles = TilesFor(p);
        int warp = _accelerator.WarpSize;
        int threads = (tiles.Tq * tiles.Chunks + warp - 1) / warp * warp;
        int queryTiles = (p.GroupSize + tiles.Tq - 1) / tiles.Tq;
        var config = new KernelConfig(new Index3D(p.B * p.GroupsPerImage * p.Heads, queryTiles, 1), new Index3D(threads, 1, 1));
        _kernel(config, p, tiles, qkv, padQkv, biasTable, y);
    }

    private static void Kernel(WindowAttentionParams p, WindowAttentionTiles tl, ArrayView<float> qkv, ArrayView<float> padQkv,
        ArrayView<float> biasTable, ArrayView<float> y)
    {
        // Q stride d+1 and S stride Tk+1: threads of a warp read rows of different queries without bank conflicts.
        var sQ = SharedMemory.Allocate<float>(TqMax * (MaxHeadDim + 1));
        var sK = SharedMemory.Allocate<float>(Tk * MaxHeadDim);
        var sV = SharedMemory.Allocate<float>(Tk * MaxHeadDim);
        var sS = SharedMemory.Allocate<float>(TqMax * (Tk + 1));
        var sM = SharedMemory.Allocate<float>(TqMax);
        var sL = SharedMemory.Allocate<float>(TqMax);
        var sAlpha = SharedMemory.Allocate<float>(TqMax);

        int tid = Group.IdxX, nt = Group.DimX;
        int heads = p.Heads, h = Grid.IdxX % heads, bg = Grid.IdxX / heads;
        int gpi = p.GroupsPerImage, b = bg / gpi, g = bg - b * gpi;
        int n = p.GroupSize, d = p.HeadDim, c = p.Channels, c3 = 3 * c, tq = tl.Tq;
        int qs = d + 1, vs = tl.Chunks * 8;
        int q0 = Grid.IdxY * tq;
        long image = (long)b * p.Tokens;
        float scale = p.Scale;

        // Q tile: consecutive threads read consecutive channels of one token's q (coalesced); rows past the group are 0.
        for (int idx = tid; idx < tq * d; idx += nt)
        {
            int i = idx / d, e = idx - i * d;
            float qv = 0f;
            if (q0 + i < n)
            {
                int token = p.SourceToken(g, q0 + i);
                qv = token >= 0 ? qkv[(image + token) * c3 + h * d + e] : padQkv[h * d + e];
            }
            sQ[i * qs + e] = qv * scale;
        }
        if (tid < tq)
        {
            sM[tid] = float.NegativeInfinity;
            sL[tid] = 0f;
        }

        // This thread's query row and its 8 output channels [c0, c0 + 8).
        int oi = tid % tq, chunk = tid / tq, c0 = chunk * 8;
        bool owner = chunk < tl.Chunks;
        bool hasBias = p.Grouping == AttentionGrouping.Window && p.HasRelativeBias != 0;
        bool masked = p.Grouping == AttentionGrouping.Window && p.Shift > 0;
        int qRegion = masked && q0 + oi < n ? p.Region(g, q0 + oi) : 0;
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, a4 = 0f, a5 = 0f, a6 = 0f, a7 = 0f;

        for (int k0 = 0; k0 < n; k0 += Tk)
        {
            Group.Barrier(); // the previous tile's P V is done with sK, sV, sS (and the Q tile is visible)

            // K and V tile (V rows padded with zeros to 8 * Chunks channels); keys past the group are 0.
            for (int idx = tid; idx < Tk * vs; idx += nt)
            {
                int j = idx / vs, e = idx - j * vs;
                float kv = 0f, vv = 0f;
                if (e < d && k0 + j < n)
                {
                    int token = p.SourceToken(g, k0 + j);
                    if (token >= 0)
                    {
                        long at = (image + token) * c3 + h * d + e;
                        kv = qkv[at + c];
                        vv = qkv[at + 2 * c];
                    }
                    else
                    {
                        kv = padQkv[c + h * d + e];
                        vv = padQkv[2 * c + h * d + e];
                    }
                }
                if (e < d) sK[j * d + e] = kv;
                sV[j * vs + e] = vv;
            }
            Group.Barrier();

            // Scores of query row oi against keys jb..jb+3, blocks of 4 keys dealt round-robin to the row's threads.
            if (owner)
            {
                for (int jb = chunk * 4; jb < Tk; jb += 4 * tl.Chunks)
                {
                    float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
                    int qa = oi * qs, ka = jb * d;
                    for (int e = 0; e < d; e++)
                    {
                        float qv = sQ[qa + e];
                        s0 += qv * sK[ka + e];
                        s1 += qv * sK[ka + d + e];
                        s2 += qv * sK[ka + 2 * d + e];
                        s3 += qv * sK[ka + 3 * d + e];
                    }
                    int row = oi * (Tk + 1) + jb;
                    sS[row] = Score(p, biasTable, s0, q0 + oi, k0 + jb, g, h, hasBias, masked, qRegion);
                    sS[row + 1] = Score(p, biasTable, s1, q0 + oi, k0 + jb + 1, g, h, hasBias, masked, qRegion);
                    sS[row + 2] = Score(p, biasTable, s2, q0 + oi, k0 + jb + 2, g, h, hasBias, masked, qRegion);
                    sS[row + 3] = Score(p, biasTable, s3, q0 + oi, k0 + jb + 3, g, h, hasBias, masked, qRegion);
                }
            }
            Group.Barrier();

            // Online softmax, one thread per query row: new running max, P = exp(S - m), rescale factor for the old sums.
            if (tid < tq)
            {
                int row = tid * (Tk + 1);
                float mOld = sM[tid], m = mOld;
                for (int j = 0; j < Tk; j++) m = XMath.Max(m, sS[row + j]);
                // The first tile always holds a real key, so m is finite and exp(-inf - m) = 0 there.
                float alpha = XMath.Exp(mOld - m), sum = 0f;
                for (int j = 0; j < Tk; j++)
                {
                    float pj = XMath.Exp(sS[row + j] - m);
                    sS[row + j] = pj;
                    sum += pj;
                }
                sM[tid] = m;
                sL[tid] = sL[tid] * alpha + sum;
                sAlpha[tid] = alpha;
            }
            Group.Barrier();

            // out[oi, c0..c0+8) = alpha * out + P V over this tile's real keys.
            if (owner)
            {
                float alpha = sAlpha[oi];
                a0 *= alpha; a1 *= alpha; a2 *= alpha; a3 *= alpha; a4 *= alpha; a5 *= alpha; a6 *= alpha; a7 *= alpha;
                int keys = XMath.Min(Tk, n - k0), row = oi * (Tk + 1);
                for (int j = 0; j < keys; j++)
                {
                    float pj = sS[row + j];
                    int va = j * vs + c0;
                    a0 += pj * sV[va];
                    a1 += pj * sV[va + 1];
                    a2 += pj * sV[va + 2];
                    a3 += pj * sV[va + 3];
                    a4 += pj * sV[va + 4];
                    a5 += pj * sV[va + 5];
                    a6 += pj * sV[va + 6];
                    a7 += pj * sV[va + 7];
                }
            }
        }

        if (owner && q0 + oi < n)
        {
            int token = p.SourceToken(g, q0 + oi);
            if (token >= 0)
            {
                float inv = 1f / sL[oi];
                long at = (image + token) * c + h * d + c0;
                int left = d - c0;
                y[at] = a0 * inv;
                if (left > 1) y[at + 1] = a1 * inv;
                if (left > 2) y[at + 2] = a2 * inv;
                if (left > 3) y[at + 3] = a3 * inv;
                if (left > 4) y[at + 4] = a4 * inv;
                if (left > 5) y[at + 5] = a5 * inv;
                if (left > 6) y[at + 6] = a6 * inv;
                if (left > 7) y[at + 7] = a7 * inv;
            }
        }
    }

    /// <summary>q.k plus bias and mask; -inf for keys past the group (query rows past the group get no bias).</summary>
    private static float Score(in WindowAttentionParams p, ArrayView<float> biasTable, float s, int qi, int kj, int g, int h,
        bool hasBias, bool masked, int qRegion)
    {
        int n = p.GroupSize;
        if (kj >= n) return float.NegativeInfinity;
        if (qi >= n) return s;
        if (hasBias) s += biasTable[p.RelativeIndex(qi, kj) * p.Heads + h];
        if (masked && p.Region(g, kj) != qRegion) s += -100f;
        return s;
    }
}
