using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

[assembly: InternalsVisibleTo("GpuAnomaly.Tests")]
[assembly: InternalsVisibleTo("GpuAnomaly.Bench")]

namespace GpuAnomaly.Kernels.Cpu;

/// <summary>Packs a [kc, nc] block of the B operand into NR-wide column panels (see <see cref="Sgemm"/>).</summary>
internal unsafe interface IPanelPacker
{
    /// <summary>
    /// Writes rows k0..k0+kc and columns j0..j0+nc of B for (batch, group) into <paramref name="dst"/>:
    /// panel q holds columns j0+q*NR.. at dst + q*kc*NR, row-major [kc, NR]; columns past nc are zero.
    /// </summary>
    void Pack(int batch, int group, int k0, int kc, int j0, int nc, float* dst, int nr);

    /// <summary>
    /// Row k0 of B of (batch, group), when rows k0..k0+kc of this K block can be read in place with row stride
    /// <paramref name="ldb"/>; null when B must be packed. Full NR-wide panels are then read directly, saving
    /// the copy; the last partial panel is still packed, unless <paramref name="wholePanels"/> says reading
    /// past column N is safe (its results are discarded).
    /// </summary>
    float* Direct(int batch, int group, int k0, out int ldb, out bool wholePanels);
}

/// <summary>One GEMM (or a batch of them sharing a packed A per group): C[M, N] = act(A[M, K] * B[K, N] + bias[M]).</summary>
internal struct GemmProblem
{
    public int Batches, Groups, M, N, K;
    /// <summary>
    /// K blocks never straddle a multiple of KSegment (0: K). A convolution read in place from its padded input
    /// has one segment per filter tap: within a tap, B rows are input channels at a constant stride.
    /// </summary>
    public int KSegment;
    /// <summary>Which micro-kernel (AVX-512 8x32 or AVX2 6x16), fixed once per call: the packing depends on it.</summary>
    public bool Use512;
    /// <summary>A of every group, packed by <see cref="Sgemm.PackA"/> at group * <see cref="Sgemm.PackedASize"/>.</summary>
    public nint APacked;
    public nint C;
    public long CBatchStride, CGroupStride;
    public int Ldc;
    /// <summary>[Groups * M] row biases, or 0.</summary>
    public nint Bias;
    public Activation Act;
    public float Slope;
}

/// <summary>
/// Single-precision GEMM for the `cpu` device, BLIS-style: A is packed into MR-row panels, B into NR-column
/// panels one [KC, NC] block at a time (the block stays in L2, one panel in L1), and a register-blocked
/// micro-kernel (<see cref="SgemmMicroKernels"/>) computes each MR x NR tile. Work is split over
/// (batch, group, N block, M block) so that a single image still keeps every core busy.
/// </summary>
public static unsafe class Sgemm
{
    /// <summary>K block: the B panel (KC x NR floats) stays in L1 while every A panel streams past it.</summary>
    private const int KcMax = 128;
    /// <summary>N block: the packed B block (KC x NC) stays in L2.</summary>
    private const int NcMax = 384;
    /// <summary>Below this many flops threads cost more than they save.</summary>
    private const double ParallelFlops = 8e6;
    /// <summary>What one more task costs (scheduling, pipeline ramp), in flops: a few microseconds.</summary>
    private const double TaskOverheadFlops = 0.3e6;

    /// <summary>
    /// Tests set this to exercise the AVX2 micro-kernel on an AVX-512 machine, on their own thread only (as
    /// Conv2dCpu.DisableDirect): a process-wide flag flipped by one test changed the layout under a model another test
    /// ran at the same time. Every kernel reads it once on its calling thread and hands the choice to its tasks.
    /// </summary>
    [ThreadStatic] internal static bool ForceVector256;

    internal static bool Use512 => Vector512.IsHardwareAccelerated && !ForceVector256;
    internal static int Mr(bool use512) => use512 ? SgemmMicroKernels.Mr512 : SgemmMicroKernels.Mr256;
    internal static int Nr(bool use512) => use512 ? SgemmMicroKernels.Nr512 : SgemmMicroKernels.Nr256;

    /// <summary>C[m, n] = A[m, k] * B[k, n]; all row-major with leading dimensions lda, ldb, ldc (C is overwritten).</summary>
    public static void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0 || lda < k || ldb < n || ldc < n)
            throw new ArgumentException($"sgemm: bad sizes m={m} n={n} k={k} lda={lda} ldb={ldb} ldc={ldc}");
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            for (int i = 0; i < m; i++) c.Slice(i * ldc, n).Clear();
            return;
        }
        if (a.Length < (long)(m - 1) * lda + k || b.Length < (long)(k - 1) * ldb + n || c.Length < (long)(m - 1) * ldc + n)
            throw new ArgumentException($"sgemm: buffers a={a.Length} b={b.Length} c={c.Length} too small for m={m} n={n} k={k} lda={lda} ldb={ldb} ldc={ldc}");
        bool use512 = Use512;
        float* ap = Workspace.A(PackedASize(m, k, use512));
        fixed (float* pa = a, pb = b, pc = c)
        {
            PackA(pa, lda, m, k, ap, use512);
            var problem = new GemmProblem
            {
                Use512 = use512, Batches = 1, Groups = 1, M = m, N = n, K = k, APacked = (nint)ap,
                C = (nint)pc, Ldc = ldc, Act = Activation.None,
            };
            Run(problem, new MatrixPacker { B = pb, Ldb = ldb });
        }
    }

    /// <summary>The width of the K block starting at k0: blocks of kcMax, cut at segment ends.</summary>
    internal static int KcAt(int k0, int k, int segment, int kcMax) => Math.Min(kcMax, Math.Min(k, (k0 / segment + 1) * segment) - k0);

    internal static int KBlock(int k) => EqualBlocks(k, KcMax);

    /// <summary>The widest of the fewest blocks of at most <paramref name="max"/> that cover k, all as equal as possible.</summary>
    internal static int EqualBlocks(int k, int max) => (k + (k + max - 1) / max - 1) / ((k + max - 1) / max);

    /// <summary>The most one worker's packed B block takes (<see cref="Workspace.B"/>): KC x NC floats, NC rounded up to a panel, plus alignment.</summary>
    internal static long PackedBBlockFloats(bool use512) => (long)KcMax * ((NcMax + Nr(use512) - 1) / Nr(use512) * Nr(use512)) + 16;
    internal static long PackedASize(int m, int k, bool use512) => (long)(m + Mr(use512) - 1) / Mr(use512) * Mr(use512) * k;

    /// <summary>
    /// Packs A[m, k] (row-major, lda) for <see cref="Run"/>: K block b (starting at k0, kc wide) lives at
    /// dst + k0 * mPad, and inside it MR-row panel i at i * kc * MR, stored [kc, MR]; rows past m are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackA(float* a, int lda, int m, int k, float* dst, bool use512, int segment = 0, int kcMax = 0)
    {
        if (segment <= 0) segment = k;
        int mr = Mr(use512), mPad = (m + mr - 1) / mr * mr;
        if (kcMax <= 0) kcMax = KBlock(segment);
        for (int k0 = 0, kc; k0 < k; k0 += kc)
        {
            kc = KcAt(k0, k, segment, kcMax);
            float* block = dst + (long)k0 * mPad;
            for (int i0 = 0; i0 < mPad; i0 += mr)
            {
                float* panel = block + (long)i0 * kc;
                for (int r = 0; r < mr; r++)
                {
                    int row = i0 + r;
                    if (row < m)
                    {
                        float* src = a + (long)row * lda + k0;
                        for (int p = 0; p < kc; p++) panel[p * mr + r] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) panel[p * mr + r] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>Runs every (batch, group) GEMM of <paramref name="pr"/>, packing B blocks with <paramref name="packer"/>.</summary>
    internal static void Run<TPacker>(GemmProblem pr, TPacker packer) where TPacker : struct, IPanelPacker
    {
        int mr = Mr(pr.Use512), nr = Nr(pr.Use512);
        int bg = pr.Batches * pr.Groups;
        int mPanels = (pr.M + mr - 1) / mr, nPanels = (pr.N + nr - 1) / nr;
        int ncPanels = Math.Min(nPanels, NcMax / nr);
        int nBlocks = (nPanels + ncPanels - 1) / ncPanels, mBlocks = 1;
        double flops = 2.0 * bg * pr.M * pr.N * pr.K;
        int threads = flops < ParallelFlops ? 1 : CpuParallel.Threads;
        // Enough tasks to balance the cores: first split N finer, then M.
        int target = threads == 1 ? 1 : 4 * threads;
        if (threads > 1 && bg * nPanels >= 2 * threads)
        {
            // Enough column panels: split N only (B is then packed or read once), into blocks whose count lets
            // the cores finish together. Cost = the busiest core's panels (tasks are taken dynamically, so
            // ceil(tasks / threads) tasks of the largest block) plus a per-task overhead; equal blocks win.
            double panelFlops = 2.0 * pr.M * nr * pr.K, best = double.MaxValue;
            for (int ncp = Math.Min(nPanels, NcMax / nr); ncp >= 1; ncp--)
            {
                int nb = (nPanels + ncp - 1) / ncp, perThread = (bg * nb + threads - 1) / threads;
                double cost = perThread * (ncp * panelFlops + TaskOverheadFlops);
                if (cost < best) (best, ncPanels, nBlocks) = (cost, ncp, nb);
            }
            target = 0;
        }
        if (bg * nBlocks < target)
        {
            nBlocks = Math.Min(nPanels, (target + bg - 1) / bg);
            ncPanels = (nPanels + nBlocks - 1) / nBlocks;
            nBlocks = (nPanels + ncPanels - 1) / ncPanels;
        }
        int mcPanels = mPanels;
        if (bg * nBlocks < target)
        {
            mBlocks = Math.Min(mPanels, (target + bg * nBlocks - 1) / (bg * nBlocks));
            mcPanels = (mPanels + mBlocks - 1) / mBlocks;
            mBlocks = (mPanels + mcPanels - 1) / mcPanels;
        }
        // A few tasks that do not divide evenly among the cores leave one idle at the end: round up.
        if (threads > 1 && target > 0 && bg * nBlocks * mBlocks < 8 * threads)
            for (int nb = nBlocks + 1; nb <= Math.Min(nPanels, 2 * nBlocks) && bg * nBlocks * mBlocks % threads != 0; nb++)
            {
                int ncp = (nPanels + nb - 1) / nb;
                int real = (nPanels + ncp - 1) / ncp;
                if (bg * real * mBlocks % threads == 0) (ncPanels, nBlocks) = (ncp, real);
            }
        int tasks = bg * nBlocks * mBlocks;
        var layout = new TaskLayout { MBlocks = mBlocks, NBlocks = nBlocks, McPanels = mcPanels, NcPanels = ncPanels };
        if (threads == 1 || tasks == 1)
        {
            for (int t = 0; t < tasks; t++) RunTask(pr, packer, layout, t);
        }
        else
        {
            CpuParallel.For(0, tasks, t => RunTask(pr, packer, layout, t));
        }
    }

    private struct TaskLayout
    {
        public int MBlocks, NBlocks, McPanels, NcPanels;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunTask<TPacker>(in GemmProblem pr, TPacker packer, in TaskLayout lay, int task) where TPacker : struct, IPanelPacker
    {
        bool use512 = pr.Use512;
        int mr = Mr(use512), nr = Nr(use512);
        int mb = task % lay.MBlocks; task /= lay.MBlocks;
        int nb = task % lay.NBlocks; int bgi = task / lay.NBlocks;
        int batch = bgi / pr.Groups, g = bgi % pr.Groups;
        int j0 = nb * lay.NcPanels * nr;
        int nc = Math.Min(pr.N - j0, lay.NcPanels * nr);
        int mPanels = (pr.M + mr - 1) / mr, mPad = mPanels * mr;
        int ip0 = mb * lay.McPanels, ip1 = Math.Min(mPanels, ip0 + lay.McPanels);
        if (nc <= 0 || ip0 >= ip1) return;
        int segment = pr.KSegment > 0 ? pr.KSegment : pr.K;
        int kcMax = KBlock(segment);
        int ncPanels = (nc + nr - 1) / nr;
        float* bp = Workspace.B((long)kcMax * ncPanels * nr);
        float* aG = (float*)pr.APacked + (long)g * PackedASize(pr.M, pr.K, use512);
        float* cBase = (float*)pr.C + batch * pr.CBatchStride + g * pr.CGroupStride;
        float* biasG = pr.Bias == 0 ? null : (float*)pr.Bias + (long)g * pr.M;
        int ldc = pr.Ldc;
        float* tile = stackalloc float[SgemmMicroKernels.Mr512 * SgemmMicroKernels.Nr512];
        float* tileBias = stackalloc float[SgemmMicroKernels.Mr512];

        for (int k0 = 0, kc; k0 < pr.K; k0 += kc)
        {
            kc = KcAt(k0, pr.K, segment, kcMax);
            float* direct = packer.Direct(batch, g, k0, out int ldDirect, out bool wholePanels);
            int directPanels = direct == null ? 0 : wholePanels ? ncPanels : nc / nr;
            if (directPanels * nr < nc)
                packer.Pack(batch, g, k0, kc, j0 + directPanels * nr, nc - directPanels * nr, bp, nr);
            bool first = k0 == 0, last = k0 + kc == pr.K;
            Activation act = last ? pr.Act : Activation.None;
            float* aBlock = aG + (long)k0 * mPad;
            for (int jp = 0; jp < ncPanels; jp++)
            {
                int col = j0 + jp * nr, cols = Math.Min(nr, pr.N - col);
                float* bPanel = jp < directPanels ? direct + col : bp + (long)(jp - directPanels) * kc * nr;
                int ldb = jp < directPanels ? ldDirect : nr;
                for (int ip = ip0; ip < ip1; ip++)
                {
                    float* aPanel = aBlock + (long)ip * kc * mr;
                    int row = ip * mr, rows = Math.Min(mr, pr.M - row);
                    float* cTile = cBase + (long)row * ldc + col;
                    float* bias = first && biasG != null ? biasG + row : null;
                    if (rows == mr && cols == nr)
                    {
                        Micro(use512, kc, aPanel, bPanel, ldb, cTile, ldc, !first, bias, act, pr.Slope);
                        continue;
                    }
                    // Edge tile: compute the full MR x NR tile in a scratch buffer, copy the valid part.
                    if (bias != null)
                    {
                        for (int r = 0; r < mr; r++) tileBias[r] = r < rows ? bias[r] : 0f;
                        bias = tileBias;
                    }
                    if (!first)
                        for (int r = 0; r < rows; r++)
                            new ReadOnlySpan<float>(cTile + (long)r * ldc, cols).CopyTo(new Span<float>(tile + r * nr, cols));
                    Micro(use512, kc, aPanel, bPanel, ldb, tile, nr, !first, bias, act, pr.Slope);
                    for (int r = 0; r < rows; r++)
                        new ReadOnlySpan<float>(tile + r * nr, cols).CopyTo(new Span<float>(cTile + (long)r * ldc, cols));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Micro(bool use512, int kc, float* a, float* b, int ldb, float* c, int ldc, bool load, float* bias, Activation act, float slope)
    {
        if (use512) SgemmMicroKernels.Kernel8x32(kc, a, b, ldb, c, ldc, load, bias, act, slope);
        else SgemmMicroKernels.Kernel6x16(kc, a, b, ldb, c, ldc, load, bias, act, slope);
    }

    /// <summary>B given as a row-major matrix.</summary>
    private struct MatrixPacker : IPanelPacker
    {
        public float* B;
        public int Ldb;

        /// <summary>Always packed: a large GEMM's B rows can be far apart (TLB misses, cache-set conflicts).</summary>
        public readonly float* Direct(int batch, int group, int k0, out int ldb, out bool wholePanels)
        {
            ldb = 0;
            wholePanels = false;
            return null;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Pack(int batch, int group, int k0, int kc, int j0, int nc, float* dst, int nr)
        {
            int panels = (nc + nr - 1) / nr;
            for (int q = 0; q < panels; q++)
            {
                int cols = Math.Min(nr, nc - q * nr);
                float* panel = dst + (long)q * kc * nr;
                for (int p = 0; p < kc; p++)
                {
                    float* src = B + (long)(k0 + p) * Ldb + j0 + q * nr;
                    float* d = panel + p * nr;
                    Unsafe.CopyBlockUnaligned(d, src, (uint)cols * sizeof(float));
                    for (int j = cols; j < nr; j++) d[j] = 0f;
                }
            }
        }
    }
}

/// <summary>
/// Per-thread packing buffers: pinned, 64-byte aligned, grown on demand and kept, so repeated GEMMs and
/// convolutions allocate nothing once warm.
/// </summary>
internal static unsafe class Workspace
{
    [ThreadStatic] private static float[]? t_a;
    [ThreadStatic] private static float[]? t_b;
    [ThreadStatic] private static float[]? t_plane;
    [ThreadStatic] private static float[]? t_input;
    [ThreadStatic] private static float[]? t_output;
    [ThreadStatic] private static float[]? t_weights;
    [ThreadStatic] private static float[]? t_tables;
    [ThreadStatic] private static float[]? t_scratch;

    public static float* A(long floats) => Get(ref t_a, floats);
    public static float* B(long floats) => Get(ref t_b, floats);
    /// <summary>A padded input plane (depthwise convolution).</summary>
    public static float* Plane(long floats) => Get(ref t_plane, floats);
    /// <summary>A zero-padded copy of a convolution's input, its wide output, its reordered weights.</summary>
    public static float* Input(long floats) => Get(ref t_input, floats);
    public static float* Output(long floats) => Get(ref t_output, floats);
    public static float* Weights(long floats) => Get(ref t_weights, floats);
    /// <summary>Tables a call builds on its own thread and its tasks only read (window attention's bias rows and token map).</summary>
    public static float* Tables(long floats) => Get(ref t_tables, floats);
    /// <summary>One task's private working set (window attention's K^T, V and score rows).</summary>
    public static float* Scratch(long floats) => Get(ref t_scratch, floats);

    private static float* Get(ref float[]? buffer, long floats)
    {
        if (buffer is null || buffer.Length < floats + 16)
            buffer = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        return (float*)((p + 63) & ~(nint)63);
    }
}
