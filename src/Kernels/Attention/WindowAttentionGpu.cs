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
/// Each query's and key's map token, bias position and shift region are computed once per tile into shared memory, so
/// the per-score work has no integer division. Head dim up to 64; shared memory ~44 KB per group.
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
        // Q stride d+1 and K stride d+1: threads of a warp read rows of different queries (or keys) without bank
        // conflicts. V is read as Float4s (two 16-byte loads for a thread's 8 channels instead of eight 4-byte ones).
        var sQ = SharedMemory.Allocate<float>(TqMax * (MaxHeadDim + 1));
        var sK = SharedMemory.Allocate<float>(Tk * (MaxHeadDim + 1));
        var sV4 = SharedMemory.Allocate<Float4>(Tk * MaxHeadDim / 4);
        var sS = SharedMemory.Allocate<float>(TqMax * (Tk + 1));
        var sM = SharedMemory.Allocate<float>(TqMax);
        var sL = SharedMemory.Allocate<float>(TqMax);
        var sAlpha = SharedMemory.Allocate<float>(TqMax);
        // Per query row and per key of the tile, computed once (SourceToken, Region and the bias row need integer
        // divisions): the map token (-1 padded), the bias-table position and the shift region.
        var sQTok = SharedMemory.Allocate<int>(TqMax);
        var sQPos = SharedMemory.Allocate<int>(TqMax);
        var sQReg = SharedMemory.Allocate<int>(TqMax);
        var sKTok = SharedMemory.Allocate<int>(Tk);
        var sKPos = SharedMemory.Allocate<int>(Tk);
        var sKReg = SharedMemory.Allocate<int>(Tk);
        var sV = sV4.Cast<float>();

        int tid = Group.IdxX, nt = Group.DimX;
        int heads = p.Heads, h = Grid.IdxX % heads, bg = Grid.IdxX / heads;
        int gpi = p.GroupsPerImage, b = bg / gpi, g = bg - b * gpi;
        int n = p.GroupSize, d = p.HeadDim, c = p.Channels, c3 = 3 * c, tq = tl.Tq;
        int qs = d + 1, ks = d + 1, vs = tl.Chunks * 8;
        int q0 = Grid.IdxY * tq;
        long image = (long)b * p.Tokens;
        float scale = p.Scale;
        bool hasBias = p.Grouping == AttentionGrouping.Window && p.HasRelativeBias != 0;
        bool masked = p.Grouping == AttentionGrouping.Window && p.Shift > 0;
        int ws = p.WindowSize, span = 2 * ws - 1;

        // relative index (yi - yj + ws - 1)(2ws - 1) + (xi - xj) + ws - 1 = qPos - kPos, with
        // qPos = yi (2ws - 1) + xi + (ws - 1)(2ws - 1) + ws - 1 and kPos = yj (2ws - 1) + xj.
        if (tid < tq)
        {
            int i = q0 + tid;
            bool real = i < n;
            sQTok[tid] = real ? p.SourceToken(g, i) : -1;
            int yi = hasBias ? i / ws : 0; // sparse groups have no window (and their ws may be anything)
            sQPos[tid] = hasBias ? yi * span + (i - yi * ws) + (ws - 1) * span + ws - 1 : 0;
            sQReg[tid] = masked && real ? p.Region(g, i) : 0;
            sM[tid] = float.NegativeInfinity;
            sL[tid] = 0f;
        }
        Group.Barrier();

        // Q tile: consecutive threads read consecutive channels of one token's q (coalesced); rows past the group are 0.
        for (int idx = tid; idx < tq * d; idx += nt)
        {
            int i = idx / d, e = idx - i * d;
            float qv = 0f;
            if (q0 + i < n)
            {
                int token = sQTok[i];
                qv = token >= 0 ? qkv[(image + token) * c3 + h * d + e] : padQkv[h * d + e];
            }
            sQ[i * qs + e] = qv * scale;
        }

        // This thread's query row and its 8 output channels [c0, c0 + 8) in the P V step.
        int oi = tid % tq, chunk = tid / tq, c0 = chunk * 8;
        bool owner = chunk < tl.Chunks;
        // Score step: pairs of query rows (qp, qp + half) x blocks of 4 keys. Consecutive threads take consecutive pairs
        // of one key block: with Tq = 64 a warp's K reads are one broadcast; with fewer pairs than lanes a warp spans
        // several key blocks, whose rows (stride d + 1) start in different banks. Q reads (stride d + 1) never conflict.
        int half = (tq + 1) / 2, items = half * (Tk / 4);
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, a4 = 0f, a5 = 0f, a6 = 0f, a7 = 0f;

        for (int k0 = 0; k0 < n; k0 += Tk)
        {
            Group.Barrier(); // the previous tile's P V is done with sK, sV, sS and the key table (and Q is visible)

            for (int jt = tid; jt < Tk; jt += nt) // a group can have fewer threads than keys (d <= 8: Tq threads)
            {
                int j = k0 + jt;
                bool real = j < n;
                // -2: past the group (score -inf); -1: a padded token (padQkv)
                sKTok[jt] = real ? p.SourceToken(g, j) : -2;
                int yj = hasBias ? j / ws : 0;
                sKPos[jt] = hasBias ? yj * span + (j - yj * ws) : 0;
                sKReg[jt] = masked && real ? p.Region(g, j) : 0;
            }
            Group.Barrier();

            // K and V tile (V rows padded with zeros to 8 * Chunks channels); keys past the group are 0.
            for (int idx = tid; idx < Tk * vs; idx += nt)
            {
                int j = idx / vs, e = idx - j * vs;
                float kv = 0f, vv = 0f;
                int token = sKTok[j];
                if (e < d && token >= 0)
                {
                    long at = (image + token) * c3 + h * d + e;
                    kv = qkv[at + c];
                    vv = qkv[at + 2 * c];
                }
                else if (e < d && token == -1)
                {
                    kv = padQkv[c + h * d + e];
                    vv = padQkv[2 * c + h * d + e];
                }
                if (e < d) sK[j * ks + e] = kv;
                sV[j * vs + e] = vv;
            }
            Group.Barrier();

            // Scores of query rows qa and qb against keys kj..kj+3: 6 shared loads for 8 FMAs.
            for (int item = tid; item < items; item += nt)
            {
                int kb = item / half, qa = item - kb * half, qb = qa + half;
                bool second = qb < tq;
                int kj = kb * 4, ra = qa * qs, rb = (second ? qb : qa) * qs, ka = kj * ks;
                float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, t0 = 0f, t1 = 0f, t2 = 0f, t3 = 0f;
                for (int e = 0; e < d; e++)
                {
                    float qa_ = sQ[ra + e], qb_ = sQ[rb + e];
                    float k0v = sK[ka + e], k1v = sK[ka + ks + e], k2v = sK[ka + 2 * ks + e], k3v = sK[ka + 3 * ks + e];
                    s0 += qa_ * k0v; s1 += qa_ * k1v; s2 += qa_ * k2v; s3 += qa_ * k3v;
                    t0 += qb_ * k0v; t1 += qb_ * k1v; t2 += qb_ * k2v; t3 += qb_ * k3v;
                }
                int row = qa * (Tk + 1) + kj;
                bool qReal = q0 + qa < n;
                int qPos = sQPos[qa], qReg = sQReg[qa];
                sS[row] = Score(biasTable, s0, kj, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
                sS[row + 1] = Score(biasTable, s1, kj + 1, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
                sS[row + 2] = Score(biasTable, s2, kj + 2, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
                sS[row + 3] = Score(biasTable, s3, kj + 3, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
                if (second)
                {
                    row = qb * (Tk + 1) + kj;
                    qReal = q0 + qb < n;
                    qPos = sQPos[qb];
                    qReg = sQReg[qb];
                    sS[row] = Score(biasTable, t0, kj, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
                    sS[row + 1] = Score(biasTable, t1, kj + 1, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
                    sS[row + 2] = Score(biasTable, t2, kj + 2, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
                    sS[row + 3] = Score(biasTable, t3, kj + 3, qReal, qPos, qReg, h, heads, hasBias, masked, sKTok, sKPos, sKReg);
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
                int keys = XMath.Min(Tk, n - k0), row = oi * (Tk + 1), vs4 = vs / 4;
                for (int j = 0; j < keys; j++)
                {
                    float pj = sS[row + j];
                    Float4 v0 = sV4[j * vs4 + 2 * chunk], v1 = sV4[j * vs4 + 2 * chunk + 1];
                    a0 += pj * v0.X;
                    a1 += pj * v0.Y;
                    a2 += pj * v0.Z;
                    a3 += pj * v0.W;
                    a4 += pj * v1.X;
                    a5 += pj * v1.Y;
                    a6 += pj * v1.Z;
                    a7 += pj * v1.W;
                }
            }
        }

        if (owner && q0 + oi < n)
        {
            int token = sQTok[oi];
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

    /// <summary>
    /// q.k plus bias and mask for key kj of the tile; -inf for keys past the group (query rows past the group get no
    /// bias: their output is never stored).
    /// </summary>
    private static float Score(ArrayView<float> biasTable, float s, int kj, bool qReal, int qPos, int qReg, int h, int heads,
        bool hasBias, bool masked, ArrayView<int> kTok, ArrayView<int> kPos, ArrayView<int> kReg)
    {
        if (kTok[kj] == -2) return float.NegativeInfinity;
        if (!qReal) return s;
        if (hasBias) s += biasTable[(qPos - kPos[kj]) * heads + h];
        if (masked && kReg[kj] != qReg) s += -100f;
        return s;
    }
}
