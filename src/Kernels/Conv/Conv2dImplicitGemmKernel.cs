using System.Runtime.CompilerServices;
using ILGPU;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The per-group GEMM sizes of an implicit-GEMM convolution, computed on the host once per
/// launch so the kernel does no divisions it can avoid. Per group g: C[M, N] = A[M, K] * B[K, N]
/// with M = COut/groups, N = batch*OutH*OutW, K = CIn/groups*KH*KW; A is the weight tensor as
/// PyTorch stores it, B the im2col of the input (never materialized).
/// </summary>
public struct ImplicitGemmShape
{
    public int M, N, K;
    public int MTiles;
    public int KHKW, HW, OHOW;
    /// <summary>The K-step (BK) written as ci * KHKW + ky * KW + kx: how one K-step moves a (ci, ky, kx) index.</summary>
    public int StepCi, StepKy, StepKx;

    public static ImplicitGemmShape Create(in Conv2dParams p) =>
        Create(p, Conv2dImplicitGemmKernel.BM, Conv2dImplicitGemmKernel.BK);

    /// <summary>The shape for a kernel with <paramref name="bm"/>-row tiles stepping K by <paramref name="bk"/>.</summary>
    public static ImplicitGemmShape Create(in Conv2dParams p, int bm, int bk)
    {
        int khkw = p.KH * p.KW;
        int m = p.COutPerGroup;
        return new ImplicitGemmShape
        {
            M = m,
            N = p.N * p.OutH * p.OutW,
            K = p.CInPerGroup * khkw,
            MTiles = (m + bm - 1) / bm,
            KHKW = khkw,
            HW = p.H * p.W,
            OHOW = p.OutH * p.OutW,
            StepCi = bk / khkw,
            StepKy = bk % khkw / p.KW,
            StepKx = bk % p.KW,
        };
    }
}

/// <summary>
/// Explicitly grouped, tiled implicit-GEMM Conv2d. A group of 256 threads computes a 64 (M,
/// output channels) x 64 (N, output pixels) tile of one conv group, stepping through K by 16:
/// each step stages A[64 x 16] (weights) and B[16 x 64] (im2col of the input, zero where the
/// window hits padding) in shared memory, then each thread accumulates a 4x4 micro-tile in
/// registers. Grid: X = N tiles, Y = M tiles x conv groups.
///
/// Why this layout:
/// - Shared memory is allocated as 16-byte vectors and thread (ty, tx) = (t / 16, t % 16)
///   owns the contiguous micro-tile rows 4ty..4ty+3, columns 4tx..4tx+3: each k of the inner
///   loop is one ld.shared.v4 of A (a broadcast: 2 addresses per warp) and one of B (16
///   consecutive 16-byte vectors per warp, conflict-free), for 16 FMAs. Scalar loads with a
///   strided micro-tile were 1.6x slower on an H100 (shared-memory bandwidth bound).
/// - Per-thread sub-views make every inner-loop address base + constant, which the PTX
///   assembler folds into the load instruction (another 1.15x).
/// - Loading uses another mapping than computing: a thread loads A rows ty + 16r at k = tx
///   and B columns tx + 16j at k = ty, so consecutive threads read consecutive k of a weight
///   row and consecutive output pixels of the input (both coalesced for stride 1), and the
///   pixel decomposition (batch, oy, ox) of its B columns is done once, not per K-step.
/// - A is stored transposed ([k][m], row pitch 68 floats, a multiple of 4 for the vector
///   reads): the stores then hit 2-way bank conflicts at most; B is stored [k][n], conflict-free.
/// - The next K-step's global loads are issued into registers before the current step's
///   math, so their latency hides behind 256 FMAs; the (ci, ky, kx) of a B row advances by a
///   precomputed step instead of dividing.
/// - The inner loop over the 16 k of a step is unrolled by hand (ILGPU 1.5.3 does not unroll).
/// Measured on an H100 SXM (gpuanomaly bench): 27-28.5 TFLOP/s on 128-256 channel
/// 3x3/5x5 convs (about 42% of the FP32 FMA peak), 19-23 TFLOP/s on 1-2 GFLOP layers.
/// Out-of-range rows/columns are clamped to a valid element for loading and dropped in the
/// epilogue; out-of-range k load zeros, so no edge needs a special path.
/// </summary>
internal static class Conv2dImplicitGemmKernel
{
    public const int BM = 64, BN = 64, BK = 16, Threads = 256;
    private const int LDA = BM + 4;

    /// <summary>Four floats read as one 16-byte shared load; written only through a float view of the same memory.</summary>
    internal struct Vec4
    {
#pragma warning disable CS0649
        public float X, Y, Z, W;
#pragma warning restore CS0649
    }

    internal struct Column
    {
        public int XBase, IY0, IX0, YBase, Valid;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Column MakeColumn(Conv2dParams p, ImplicitGemmShape d, int g, int n)
    {
        var c = new Column { Valid = n < d.N ? 1 : 0 };
        if (n >= d.N) n = d.N - 1;
        int b = n / d.OHOW;
        int pix = n - b * d.OHOW;
        int oy = pix / p.OutW;
        int ox = pix - oy * p.OutW;
        c.XBase = (b * p.CIn + g * p.CInPerGroup) * d.HW;
        c.IY0 = oy * p.StrideH - p.PadTop;
        c.IX0 = ox * p.StrideW - p.PadLeft;
        c.YBase = b * p.COut * d.OHOW + pix;
        return c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float LoadB(Conv2dParams p, ArrayView<float> x, Column c, int kOk, int chan, int dy, int dx)
    {
        int iy = c.IY0 + dy;
        int ix = c.IX0 + dx;
        if (kOk != 0 && (uint)iy < (uint)p.H && (uint)ix < (uint)p.W)
            return x[c.XBase + chan + iy * p.W + ix];
        return 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Conv2dParams p, ImplicitGemmShape d, ArrayView<float> bias, ArrayView<float> y,
        int g, int m, Column q0, Column q1, Column q2, Column q3, float v0, float v1, float v2, float v3)
    {
        if (m >= d.M) return;
        int co = g * d.M + m;
        float b = p.HasBias != 0 ? bias[co] : 0f;
        int yc = co * d.OHOW;
        if (q0.Valid != 0) y[q0.YBase + yc] = Conv2dDirectKernel.Activate(v0 + b, p.Act, p.Slope);
        if (q1.Valid != 0) y[q1.YBase + yc] = Conv2dDirectKernel.Activate(v1 + b, p.Act, p.Slope);
        if (q2.Valid != 0) y[q2.YBase + yc] = Conv2dDirectKernel.Activate(v2 + b, p.Act, p.Slope);
        if (q3.Valid != 0) y[q3.YBase + yc] = Conv2dDirectKernel.Activate(v3 + b, p.Act, p.Slope);
    }

    public static void Kernel(Conv2dParams p, ImplicitGemmShape d, ArrayView<float> x, ArrayView<float> w,
        ArrayView<float> bias, ArrayView<float> y)
    {
        // Allocated as 16-byte vectors so the inner loop's reads are single ld.shared.v4 instructions.
        var sA4 = SharedMemory.Allocate<Vec4>(BK * LDA / 4);
        var sB4 = SharedMemory.Allocate<Vec4>(BK * BN / 4);
        var sA = sA4.Cast<float>();
        var sB = sB4.Cast<float>();
        int t = Group.IdxX;
        int tx = t & 15, ty = t >> 4;
        int g = Grid.IdxY / d.MTiles;
        int m0 = (Grid.IdxY - g * d.MTiles) * BM;
        int n0 = Grid.IdxX * BN;

        // The 4 B columns this thread loads (tx + 16j; invalid ones clamped to a real pixel).
        Column q0 = MakeColumn(p, d, g, n0 + tx);
        Column q1 = MakeColumn(p, d, g, n0 + tx + 16);
        Column q2 = MakeColumn(p, d, g, n0 + tx + 32);
        Column q3 = MakeColumn(p, d, g, n0 + tx + 48);

        // The 4 weight rows this thread loads (ty + 16r; rows past M are clamped, and never stored).
        int wr0 = (g * d.M + IntrinsicMath.Min(m0 + ty, d.M - 1)) * d.K;
        int wr1 = (g * d.M + IntrinsicMath.Min(m0 + ty + 16, d.M - 1)) * d.K;
        int wr2 = (g * d.M + IntrinsicMath.Min(m0 + ty + 32, d.M - 1)) * d.K;
        int wr3 = (g * d.M + IntrinsicMath.Min(m0 + ty + 48, d.M - 1)) * d.K;

        // The B row this thread loads is k = k0 + ty, tracked as (ci, ky, kx).
        int ci = ty / d.KHKW;
        int rem = ty - ci * d.KHKW;
        int ky = rem / p.KW;
        int kx = rem - ky * p.KW;
        int cig = p.CInPerGroup;

        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f, c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
        Vec4 av, bv;

        // Prefetch registers: the A and B elements of the next K-step.
        int ka = tx;
        float ra0 = 0f, ra1 = 0f, ra2 = 0f, ra3 = 0f;
        if (ka < d.K) { ra0 = w[wr0 + ka]; ra1 = w[wr1 + ka]; ra2 = w[wr2 + ka]; ra3 = w[wr3 + ka]; }
        int kOk = ci < cig ? 1 : 0;
        int chan = ci * d.HW, dy = ky * p.DilH, dx = kx * p.DilW;
        float rb0 = LoadB(p, x, q0, kOk, chan, dy, dx);
        float rb1 = LoadB(p, x, q1, kOk, chan, dy, dx);
        float rb2 = LoadB(p, x, q2, kOk, chan, dy, dx);
        float rb3 = LoadB(p, x, q3, kOk, chan, dy, dx);

        int aStore = tx * LDA + ty, bStore = ty * BN + tx;
        // Per-thread sub-views, so every inner-loop read has a constant offset the PTX assembler folds into the load.
        var aT = sA4.SubView(ty, BK * LDA / 4 - ty);
        var bT = sB4.SubView(tx, BK * BN / 4 - tx);
        int steps = (d.K + BK - 1) / BK;
        for (int s = 0; s < steps; s++)
        {
            sA[aStore] = ra0; sA[aStore + 16] = ra1; sA[aStore + 32] = ra2; sA[aStore + 48] = ra3;
            sB[bStore] = rb0; sB[bStore + 16] = rb1; sB[bStore + 32] = rb2; sB[bStore + 48] = rb3;
            Group.Barrier();

            if (s + 1 < steps)
            {
                ka += BK;
                ra0 = 0f; ra1 = 0f; ra2 = 0f; ra3 = 0f;
                if (ka < d.K) { ra0 = w[wr0 + ka]; ra1 = w[wr1 + ka]; ra2 = w[wr2 + ka]; ra3 = w[wr3 + ka]; }
                kx += d.StepKx;
                if (kx >= p.KW) { kx -= p.KW; ky++; }
                ky += d.StepKy;
                if (ky >= p.KH) { ky -= p.KH; ci++; }
                ci += d.StepCi;
                kOk = ci < cig ? 1 : 0;
                chan = ci * d.HW; dy = ky * p.DilH; dx = kx * p.DilW;
                rb0 = LoadB(p, x, q0, kOk, chan, dy, dx);
                rb1 = LoadB(p, x, q1, kOk, chan, dy, dx);
                rb2 = LoadB(p, x, q2, kOk, chan, dy, dx);
                rb3 = LoadB(p, x, q3, kOk, chan, dy, dx);
            }

            // The 16 k of this step, unrolled (generated): one 16-byte shared load of A and one of B per k.
            av = aT[0]; bv = bT[0];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[17]; bv = bT[16];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[34]; bv = bT[32];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[51]; bv = bT[48];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[68]; bv = bT[64];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[85]; bv = bT[80];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[102]; bv = bT[96];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[119]; bv = bT[112];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[136]; bv = bT[128];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[153]; bv = bT[144];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[170]; bv = bT[160];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[187]; bv = bT[176];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[204]; bv = bT[192];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[221]; bv = bT[208];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[238]; bv = bT[224];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            av = aT[255]; bv = bT[240];
            c00 += av.X * bv.X; c01 += av.X * bv.Y; c02 += av.X * bv.Z; c03 += av.X * bv.W;
            c10 += av.Y * bv.X; c11 += av.Y * bv.Y; c12 += av.Y * bv.Z; c13 += av.Y * bv.W;
            c20 += av.Z * bv.X; c21 += av.Z * bv.Y; c22 += av.Z * bv.Z; c23 += av.Z * bv.W;
            c30 += av.W * bv.X; c31 += av.W * bv.Y; c32 += av.W * bv.Z; c33 += av.W * bv.W;
            Group.Barrier();
        }

        // The micro-tile is rows 4ty..4ty+3 and columns 4tx..4tx+3 (the loads used other columns).
        q0 = MakeColumn(p, d, g, n0 + 4 * tx);
        q1 = MakeColumn(p, d, g, n0 + 4 * tx + 1);
        q2 = MakeColumn(p, d, g, n0 + 4 * tx + 2);
        q3 = MakeColumn(p, d, g, n0 + 4 * tx + 3);
        StoreRow(p, d, bias, y, g, m0 + 4 * ty, q0, q1, q2, q3, c00, c01, c02, c03);
        StoreRow(p, d, bias, y, g, m0 + 4 * ty + 1, q0, q1, q2, q3, c10, c11, c12, c13);
        StoreRow(p, d, bias, y, g, m0 + 4 * ty + 2, q0, q1, q2, q3, c20, c21, c22, c23);
        StoreRow(p, d, bias, y, g, m0 + 4 * ty + 3, q0, q1, q2, q3, c30, c31, c32, c33);
    }
}
