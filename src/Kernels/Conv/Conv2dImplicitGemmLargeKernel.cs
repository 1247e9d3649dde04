using System.Runtime.CompilerServices;
using ILGPU;
using static GpuAnomaly.Kernels.Conv.Conv2dImplicitGemmKernel;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// The implicit-GEMM Conv2d for large GEMMs: the design of <see cref="Conv2dImplicitGemmKernel"/>
/// with a 128 (M) x 128 (N) tile, K-step 8, 256 threads and an 8x8 micro-tile per thread. Each
/// k of the inner loop is four 16-byte shared loads for 64 FMAs (the 64x64 kernel: two for 16),
/// which halves the shared-memory traffic per FMA, the 64x64 kernel's bottleneck.
///
/// - Thread (ty, tx) = (t / 16, t % 16) owns rows 4ty..4ty+3 and 64+4ty..64+4ty+3 and columns
///   4tx..4tx+3 and 64+4tx..64+4tx+3: the two halves keep the 16-byte reads of a warp on
///   consecutive vectors (B) or a broadcast (A), conflict-free.
/// - Loading: a thread loads A rows t/8 + 32r at k = t % 8 (consecutive k of a weight row) and B
///   columns t % 32 + 32j at k = t / 32 (32 consecutive output pixels per warp: coalesced for
///   stride 1), so it tracks one (ci, ky, kx) and decomposes 4 pixels once.
/// - Shared memory is double-buffered (2 x 8.3 KB): the next step's registers are stored into the
///   other buffer after the math, one barrier per K-step instead of two.
/// Measured on an H100 (gpuanomaly bench): 36.6 TFLOP/s (64% of the FMA peak) on the 5x5
/// 128->256 266x266 conv, against 30.0 for the 64x64 kernel. Only worth it when the tiles stay
/// full and the grid has several waves: Forward picks it from <see cref="Conv2dGpu.PrefersLarge"/>.
/// </summary>
internal static class Conv2dImplicitGemmLargeKernel
{
    public const int BM = 128, BN = 128, BK = 8, Threads = 256;
    private const int LDA = BM + 4;
    private const int ABuf = BK * LDA, BBuf = BK * BN;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOne(Conv2dParams p, ImplicitGemmShape d, ArrayView<float> bias, ArrayView<float> y,
        int g, int m, Column q, float v)
    {
        if (m >= d.M) return;
        int co = g * d.M + m;
        float b = p.HasBias != 0 ? bias[co] : 0f;
        y[q.YBase + co * d.OHOW] = Conv2dDirectKernel.Activate(v + b, p.Act, p.Slope);
    }

    /// <summary>One output column of the micro-tile: rows mA..mA+3 and mA+64..mA+67.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreColumn(Conv2dParams p, ImplicitGemmShape d, ArrayView<float> bias, ArrayView<float> y,
        int g, int mA, Column q, float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (q.Valid == 0) return;
        StoreOne(p, d, bias, y, g, mA, q, v0);
        StoreOne(p, d, bias, y, g, mA + 1, q, v1);
        StoreOne(p, d, bias, y, g, mA + 2, q, v2);
        StoreOne(p, d, bias, y, g, mA + 3, q, v3);
        StoreOne(p, d, bias, y, g, mA + 64, q, v4);
        StoreOne(p, d, bias, y, g, mA + 65, q, v5);
        StoreOne(p, d, bias, y, g, mA + 66, q, v6);
        StoreOne(p, d, bias, y, g, mA + 67, q, v7);
    }

    public static void Kernel(Conv2dParams p, ImplicitGemmShape d, ArrayView<float> x, ArrayView<float> w,
        ArrayView<float> bias, ArrayView<float> y)
    {
        var sA4 = SharedMemory.Allocate<Vec4>(2 * ABuf / 4);
        var sB4 = SharedMemory.Allocate<Vec4>(2 * BBuf / 4);
        var sA = sA4.Cast<float>();
        var sB = sB4.Cast<float>();
        int t = Group.IdxX;
        int tx = t & 15, ty = t >> 4;
        int g = Grid.IdxY / d.MTiles;
        int m0 = (Grid.IdxY - g * d.MTiles) * BM;
        int n0 = Grid.IdxX * BN;

        // Load mapping: B columns t % 32 + 32j at k = t / 32; A rows t / 8 + 32r at k = t % 8.
        int lb = t & 31, kb = t >> 5, la = t >> 3;
        Column q0 = MakeColumn(p, d, g, n0 + lb);
        Column q1 = MakeColumn(p, d, g, n0 + lb + 32);
        Column q2 = MakeColumn(p, d, g, n0 + lb + 64);
        Column q3 = MakeColumn(p, d, g, n0 + lb + 96);
        int wr0 = (g * d.M + IntrinsicMath.Min(m0 + la, d.M - 1)) * d.K;
        int wr1 = (g * d.M + IntrinsicMath.Min(m0 + la + 32, d.M - 1)) * d.K;
        int wr2 = (g * d.M + IntrinsicMath.Min(m0 + la + 64, d.M - 1)) * d.K;
        int wr3 = (g * d.M + IntrinsicMath.Min(m0 + la + 96, d.M - 1)) * d.K;

        int ci = kb / d.KHKW;
        int rem = kb - ci * d.KHKW;
        int ky = rem / p.KW;
        int kx = rem - ky * p.KW;
        int cig = p.CInPerGroup;

        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f, c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f, c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f, c40 = 0f, c41 = 0f, c42 = 0f, c43 = 0f, c50 = 0f, c51 = 0f, c52 = 0f, c53 = 0f, c60 = 0f, c61 = 0f, c62 = 0f, c63 = 0f, c70 = 0f, c71 = 0f, c72 = 0f, c73 = 0f;
        float c04 = 0f, c05 = 0f, c06 = 0f, c07 = 0f, c14 = 0f, c15 = 0f, c16 = 0f, c17 = 0f, c24 = 0f, c25 = 0f, c26 = 0f, c27 = 0f, c34 = 0f, c35 = 0f, c36 = 0f, c37 = 0f, c44 = 0f, c45 = 0f, c46 = 0f, c47 = 0f, c54 = 0f, c55 = 0f, c56 = 0f, c57 = 0f, c64 = 0f, c65 = 0f, c66 = 0f, c67 = 0f, c74 = 0f, c75 = 0f, c76 = 0f, c77 = 0f;
        Vec4 a0, a1, b0, b1;

        int ka = t & 7;
        float ra0 = 0f, ra1 = 0f, ra2 = 0f, ra3 = 0f;
        if (ka < d.K) { ra0 = w[wr0 + ka]; ra1 = w[wr1 + ka]; ra2 = w[wr2 + ka]; ra3 = w[wr3 + ka]; }
        int kOk = ci < cig ? 1 : 0;
        int chan = ci * d.HW, dy = ky * p.DilH, dx = kx * p.DilW;
        float rb0 = LoadB(p, x, q0, kOk, chan, dy, dx);
        float rb1 = LoadB(p, x, q1, kOk, chan, dy, dx);
        float rb2 = LoadB(p, x, q2, kOk, chan, dy, dx);
        float rb3 = LoadB(p, x, q3, kOk, chan, dy, dx);

        int aStore = ka * LDA + la, bStore = kb * BN + lb;
        sA[aStore] = ra0; sA[aStore + 32] = ra1; sA[aStore + 64] = ra2; sA[aStore + 96] = ra3;
        sB[bStore] = rb0; sB[bStore + 32] = rb1; sB[bStore + 64] = rb2; sB[bStore + 96] = rb3;
        Group.Barrier();

        int steps = (d.K + BK - 1) / BK;
        for (int s = 0; s < steps; s++)
        {
            int cur = s & 1;
            bool more = s + 1 < steps;
            if (more)
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

            // Per-thread sub-views of the current buffer: every read below is base + constant.
            var aT = sA4.SubView(cur * (ABuf / 4) + ty, ABuf / 4 - ty);
            var bT = sB4.SubView(cur * (BBuf / 4) + tx, BBuf / 4 - tx);
            // The 8 k of this step, unrolled (generated): four 16-byte shared loads, 64 FMAs per k.
            a0 = aT[0]; a1 = aT[16]; b0 = bT[0]; b1 = bT[16];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;
            a0 = aT[33]; a1 = aT[49]; b0 = bT[32]; b1 = bT[48];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;
            a0 = aT[66]; a1 = aT[82]; b0 = bT[64]; b1 = bT[80];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;
            a0 = aT[99]; a1 = aT[115]; b0 = bT[96]; b1 = bT[112];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;
            a0 = aT[132]; a1 = aT[148]; b0 = bT[128]; b1 = bT[144];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;
            a0 = aT[165]; a1 = aT[181]; b0 = bT[160]; b1 = bT[176];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;
            a0 = aT[198]; a1 = aT[214]; b0 = bT[192]; b1 = bT[208];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;
            a0 = aT[231]; a1 = aT[247]; b0 = bT[224]; b1 = bT[240];
            c00 += a0.X * b0.X; c01 += a0.X * b0.Y; c02 += a0.X * b0.Z; c03 += a0.X * b0.W; c04 += a0.X * b1.X; c05 += a0.X * b1.Y; c06 += a0.X * b1.Z; c07 += a0.X * b1.W;
            c10 += a0.Y * b0.X; c11 += a0.Y * b0.Y; c12 += a0.Y * b0.Z; c13 += a0.Y * b0.W; c14 += a0.Y * b1.X; c15 += a0.Y * b1.Y; c16 += a0.Y * b1.Z; c17 += a0.Y * b1.W;
            c20 += a0.Z * b0.X; c21 += a0.Z * b0.Y; c22 += a0.Z * b0.Z; c23 += a0.Z * b0.W; c24 += a0.Z * b1.X; c25 += a0.Z * b1.Y; c26 += a0.Z * b1.Z; c27 += a0.Z * b1.W;
            c30 += a0.W * b0.X; c31 += a0.W * b0.Y; c32 += a0.W * b0.Z; c33 += a0.W * b0.W; c34 += a0.W * b1.X; c35 += a0.W * b1.Y; c36 += a0.W * b1.Z; c37 += a0.W * b1.W;
            c40 += a1.X * b0.X; c41 += a1.X * b0.Y; c42 += a1.X * b0.Z; c43 += a1.X * b0.W; c44 += a1.X * b1.X; c45 += a1.X * b1.Y; c46 += a1.X * b1.Z; c47 += a1.X * b1.W;
            c50 += a1.Y * b0.X; c51 += a1.Y * b0.Y; c52 += a1.Y * b0.Z; c53 += a1.Y * b0.W; c54 += a1.Y * b1.X; c55 += a1.Y * b1.Y; c56 += a1.Y * b1.Z; c57 += a1.Y * b1.W;
            c60 += a1.Z * b0.X; c61 += a1.Z * b0.Y; c62 += a1.Z * b0.Z; c63 += a1.Z * b0.W; c64 += a1.Z * b1.X; c65 += a1.Z * b1.Y; c66 += a1.Z * b1.Z; c67 += a1.Z * b1.W;
            c70 += a1.W * b0.X; c71 += a1.W * b0.Y; c72 += a1.W * b0.Z; c73 += a1.W * b0.W; c74 += a1.W * b1.X; c75 += a1.W * b1.Y; c76 += a1.W * b1.Z; c77 += a1.W * b1.W;

            if (more)
            {
                int na = (cur ^ 1) * ABuf + aStore, nb = (cur ^ 1) * BBuf + bStore;
                sA[na] = ra0; sA[na + 32] = ra1; sA[na + 64] = ra2; sA[na + 96] = ra3;
                sB[nb] = rb0; sB[nb + 32] = rb1; sB[nb + 64] = rb2; sB[nb + 96] = rb3;
            }
            Group.Barrier();
        }

        int mA = m0 + 4 * ty;
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 4 * tx + 0), c00, c10, c20, c30, c40, c50, c60, c70);
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 4 * tx + 1), c01, c11, c21, c31, c41, c51, c61, c71);
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 4 * tx + 2), c02, c12, c22, c32, c42, c52, c62, c72);
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 4 * tx + 3), c03, c13, c23, c33, c43, c53, c63, c73);
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 64 + 4 * tx + 0), c04, c14, c24, c34, c44, c54, c64, c74);
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 64 + 4 * tx + 1), c05, c15, c25, c35, c45, c55, c65, c75);
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 64 + 4 * tx + 2), c06, c16, c26, c36, c46, c56, c66, c76);
        StoreColumn(p, d, bias, y, g, mA, MakeColumn(p, d, g, n0 + 64 + 4 * tx + 3), c07, c17, c27, c37, c47, c57, c67, c77);
    }
}
