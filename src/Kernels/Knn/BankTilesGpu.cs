using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Knn;

/// <summary>
/// The GPU side of the memory-bank ops' shared engine (the device twin of <see cref="BankTiles"/>): a group of
/// <see cref="Threads"/> threads computes the dot products of a block of <see cref="TQ"/> queries with a tile of
/// <see cref="TN"/> bank rows, D in <see cref="TD"/>-wide steps through two shared tiles, each thread a 4 x 4 register
/// tile (queries ty + 8i, bank rows tx + 16j: the 16 threads of a row read consecutive shared words, no bank
/// conflicts). The result goes to a shared [TQ, TN + 1] tile already turned into the consumer's key, so that the
/// Q x N matrix never leaves the chip. The caller allocates the shared buffers (ILGPU wants them in the kernel) and
/// owns the barrier between this and reading the tile.
/// </summary>
internal static class BankTilesGpu
{
    /// <summary>Threads per group: 8 x 16, each a 4 x 4 register tile of the 32 x 64 dot tile.</summary>
    public const int Threads = 128;
    /// <summary>Queries per group.</summary>
    public const int TQ = 32;
    /// <summary>Bank rows per tile.</summary>
    public const int TN = 64;
    /// <summary>Depth of one shared step.</summary>
    public const int TD = 16;
    /// <summary>Row pitch of the shared dot tile (+1: the consumers walk it by query rows and by columns).</summary>
    public const int TilePitch = TN + 1;
    public const int TileElements = TQ * TilePitch;
    public const int QElements = TD * TQ;
    public const int BElements = TD * TN;

    /// <summary>What <see cref="Compute"/> leaves in the tile.</summary>
    public const int KeyL2 = 0, KeyInnerProduct = 1, Logit = 2;

    /// <summary>
    /// Dots of queries q0.. (of q, row-major [q, d]) with bank rows n0..nEnd (rows past nEnd read as zero), stored in
    /// <paramref name="sT"/> as: <see cref="KeyL2"/> max(|q|^2 + |m|^2 - 2 q.m, 0), <see cref="KeyInnerProduct"/> -q.m
    /// (both smaller is better, NaN as +inf so that it never beats a number), or <see cref="Logit"/> q.m * scale.
    /// Starts with a barrier-protected load, so a consumer still reading the previous tile is waited for.
    /// </summary>
    public static void Compute(int mode, float scale, int q, int d, int q0, int n0, int nEnd,
        ArrayView<float> queries, ArrayView<float> bank, ArrayView<float> norms,
        ArrayView<float> sQ, ArrayView<float> sB, ArrayView<float> sT, ArrayView<float> sQn)
    {
        int tid = Group.IdxX, tx = tid & 15, ty = tid >> 4;
        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f;
        float c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f;
        float c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
        for (int d0 = 0; d0 < d; d0 += TD)
        {
            // 512 query and 1024 bank values per step, 16 consecutive d of a row per 16 threads (64-byte segments).
            for (int e = tid; e < QElements; e += Threads)
            {
                int dd = e & (TD - 1), qq = e >> 4, row = q0 + qq, col = d0 + dd;
                sQ[dd * TQ + qq] = row < q && col < d ? queries[row * d + col] : 0f;
            }
            for (int e = tid; e < BElements; e += Threads)
            {
                int dd = e & (TD - 1), nn = e >> 4, row = n0 + nn, col = d0 + dd;
                sB[dd * TN + nn] = row < nEnd && col < d ? bank[row * d + col] : 0f;
            }
            Group.Barrier();
            // Unrolled by hand (ILGPU 1.5.3 does not unroll): four depth steps of 16 FMAs on 8 shared loads.
            for (int k = 0; k < TD; k += 4)
            {
            {
                int o = k;
                float a0 = sQ[o * TQ + ty + 0];
                float a1 = sQ[o * TQ + ty + 8];
                float a2 = sQ[o * TQ + ty + 16];
                float a3 = sQ[o * TQ + ty + 24];
                float b0 = sB[o * TN + tx + 0];
                float b1 = sB[o * TN + tx + 16];
                float b2 = sB[o * TN + tx + 32];
                float b3 = sB[o * TN + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            {
                int o = k + 1;
                float a0 = sQ[o * TQ + ty + 0];
                float a1 = sQ[o * TQ + ty + 8];
                float a2 = sQ[o * TQ + ty + 16];
                float a3 = sQ[o * TQ + ty + 24];
                float b0 = sB[o * TN + tx + 0];
                float b1 = sB[o * TN + tx + 16];
                float b2 = sB[o * TN + tx + 32];
                float b3 = sB[o * TN + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            {
                int o = k + 2;
                float a0 = sQ[o * TQ + ty + 0];
                float a1 = sQ[o * TQ + ty + 8];
                float a2 = sQ[o * TQ + ty + 16];
                float a3 = sQ[o * TQ + ty + 24];
                float b0 = sB[o * TN + tx + 0];
                float b1 = sB[o * TN + tx + 16];
                float b2 = sB[o * TN + tx + 32];
                float b3 = sB[o * TN + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            {
                int o = k + 3;
                float a0 = sQ[o * TQ + ty + 0];
                float a1 = sQ[o * TQ + ty + 8];
                float a2 = sQ[o * TQ + ty + 16];
                float a3 = sQ[o * TQ + ty + 24];
                float b0 = sB[o * TN + tx + 0];
                float b1 = sB[o * TN + tx + 16];
                float b2 = sB[o * TN + tx + 32];
                float b3 = sB[o * TN + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            }
            Group.Barrier();
        }
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 0, tx + 0, c00);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 0, tx + 16, c01);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 0, tx + 32, c02);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 0, tx + 48, c03);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 8, tx + 0, c10);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 8, tx + 16, c11);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 8, tx + 32, c12);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 8, tx + 48, c13);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 16, tx + 0, c20);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 16, tx + 16, c21);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 16, tx + 32, c22);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 16, tx + 48, c23);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 24, tx + 0, c30);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 24, tx + 16, c31);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 24, tx + 32, c32);
        Store(mode, scale, sT, sQn, norms, n0, nEnd, ty + 24, tx + 48, c33);
    }

    private static void Store(int mode, float scale, ArrayView<float> sT, ArrayView<float> sQn, ArrayView<float> norms,
        int n0, int nEnd, int r, int c, float dot)
    {
        float v;
        if (mode == Logit) v = dot * scale;
        else if (mode == KeyInnerProduct) v = float.IsNaN(dot) ? float.PositiveInfinity : -dot;
        else
        {
            float e = n0 + c < nEnd ? sQn[r] + norms[n0 + c] - 2f * dot : 0f;
            // Written out, not Max(e, 0): the GPU's max returns the non-NaN operand, which would make NaN the best.
            v = e > 0f ? e : e <= 0f ? 0f : float.PositiveInfinity;
        }
        sT[r * TilePitch + c] = v;
    }
}
