using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Knn;

/// <summary>
/// Consumes one tile row of dot products q.m for bank rows col0..col0+count of query <c>query</c>. Each
/// (query block, bank block) task owns one epilogue value, so its state needs no locking; it is a struct so that
/// the JIT specializes and inlines it into the tile loop.
/// </summary>
internal unsafe interface ITileEpilogue
{
    /// <param name="slot">the query's position inside the task's query block (its state row).</param>
    void Row(int query, int slot, int col0, float* dots, int count);
}

/// <summary>
/// The shared engine of the memory-bank ops: Q queries against N bank rows, dot products by the SGEMM micro-kernels
/// (<see cref="SgemmMicroKernels"/>) on packed queries (A) and packed bank panels (B = bank^T: NR bank rows become NR
/// columns), one MR x NR tile at a time in a stack buffer that stays in L1. The Q x N matrix never exists: each tile
/// row goes straight to the epilogue. Few queries (fewer than half a register tile) skip the packing and take row
/// dot products instead, as a GEMV: the bank is then read once, at memory speed.
/// </summary>
internal static unsafe class BankTiles
{
    /// <summary>Bank rows packed at once: 256 rows x D = 128 is 128 KiB, in L2 while every query panel passes.</summary>
    private const int NcRows = 256;
    /// <summary>
    /// Packed queries per task, at most: 512 KiB of A (1024 queries at D = 128), streamed from L2 past each 32-column
    /// bank panel held in L1. Every query block packs the whole bank again, so fewer, larger blocks pay: at 96 queries a
    /// block (9 packings) the 784 x 100000 x 128 search took 1.7x as long on one core as with one block (one packing).
    /// </summary>
    private const int PackedABytes = 512 << 10;
    /// <summary>Below this many flops one thread does all.</summary>
    private const double ParallelFlops = 2e6;

    /// <summary>Up to this many queries take the GEMV path.</summary>
    internal const int GemvQueries = 3;

    /// <summary>How the work is cut: query blocks x bank blocks, one task each.</summary>
    internal readonly struct Layout
    {
        public readonly int Q, N, D, QueryRows, BankRows, QueryBlocks, BankBlocks;
        public readonly bool Use512, Gemv;

        public Layout(int q, int n, int d)
        {
            Q = q; N = n; D = d;
            Use512 = Sgemm.Use512;
            Gemv = q <= GemvQueries;
            int mr = Sgemm.Mr(Use512);
            if (Gemv) QueryRows = q;
            else
            {
                // Equal query blocks of whole register tiles, each within the packed-A budget.
                int maxRows = Math.Max(mr, PackedABytes / (4 * d) / mr * mr);
                int qBlocks = (q + maxRows - 1) / maxRows;
                QueryRows = Math.Min(maxRows, ((q + qBlocks - 1) / qBlocks + mr - 1) / mr * mr);
            }
            QueryBlocks = (q + QueryRows - 1) / QueryRows;
            int threads = 2.0 * q * n * d < ParallelFlops ? 1 : CpuParallel.Threads;
            // Enough tasks that the cores finish together (dynamic scheduling evens out 8 per core), but bank blocks
            // no smaller than one packed block, so that packing and the per-task top-k merge stay cheap.
            int want = threads == 1 ? 1 : Math.Max(1, (8 * threads + QueryBlocks - 1) / QueryBlocks);
            int maxBlocks = Math.Max(1, n / NcRows);
            int blocks = Math.Min(want, maxBlocks);
            BankRows = (n + blocks - 1) / blocks;
            BankBlocks = (n + BankRows - 1) / BankRows;
        }

        public int Tasks => QueryBlocks * BankBlocks;
    }

    /// <summary>Packs all queries once (shared by every task, read only): <see cref="Sgemm.PackA"/>'s layout.</summary>
    internal static float* PackQueries(in Layout lay, float* queries)
    {
        if (lay.Gemv) return null;
        float* ap = Workspace.A(Sgemm.PackedASize(lay.Q, lay.D, lay.Use512));
        Sgemm.PackA(queries, lay.D, lay.Q, lay.D, ap, lay.Use512);
        return ap;
    }

    /// <summary>Runs task <paramref name="task"/> of <paramref name="lay"/>: its query block against its bank block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Run<TEpilogue>(in Layout lay, int task, float* queries, float* aPacked, float* bank, ref TEpilogue epi)
        where TEpilogue : struct, ITileEpilogue
    {
        int qb = task % lay.QueryBlocks, bb = task / lay.QueryBlocks;
        int q0 = qb * lay.QueryRows, q1 = Math.Min(lay.Q, q0 + lay.QueryRows);
        int n0 = bb * lay.BankRows, n1 = Math.Min(lay.N, n0 + lay.BankRows);
        if (lay.Gemv) RunGemv(lay.D, q0, q1, n0, n1, queries, bank, ref epi);
        else RunTiles(lay, q0, q1, n0, n1, aPacked, bank, ref epi);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunTiles<TEpilogue>(in Layout lay, int q0, int q1, int n0, int n1, float* aPacked, float* bank, ref TEpilogue epi)
        where TEpilogue : struct, ITileEpilogue
    {
        bool use512 = lay.Use512;
        int mr = Sgemm.Mr(use512), nr = Sgemm.Nr(use512), d = lay.D;
        int mPad = (lay.Q + mr - 1) / mr * mr, kcMax = Sgemm.KBlock(d);
        int ncPanelsMax = (NcRows + nr - 1) / nr;
        float* bp = Workspace.B((long)ncPanelsMax * d * nr);
        float* tile = stackalloc float[SgemmMicroKernels.Mr512 * SgemmMicroKernels.Nr512];
        for (int c0 = n0; c0 < n1; c0 += NcRows)
        {
            int nc = Math.Min(NcRows, n1 - c0), panels = (nc + nr - 1) / nr;
            PackBank(bank, d, c0, nc, bp, nr, kcMax);
            for (int jp = 0; jp < panels; jp++)
            {
                int col = c0 + jp * nr, cols = Math.Min(nr, n1 - col);
                float* bPanel = bp + (long)jp * d * nr;
                for (int row = q0; row < q1; row += mr)
                {
                    int ip = row / mr, rows = Math.Min(mr, q1 - row);
                    for (int k0 = 0, kc; k0 < d; k0 += kc)
                    {
                        kc = Sgemm.KcAt(k0, d, d, kcMax);
                        float* aPanel = aPacked + (long)k0 * mPad + (long)ip * kc * mr;
                        float* b = bPanel + (long)k0 * nr;
                        if (use512) SgemmMicroKernels.Kernel8x32(kc, aPanel, b, nr, tile, nr, k0 != 0, null, Activation.None, 0f);
                        else SgemmMicroKernels.Kernel6x16(kc, aPanel, b, nr, tile, nr, k0 != 0, null, Activation.None, 0f);
                    }
                    for (int r = 0; r < rows; r++) epi.Row(row + r, row + r - q0, col, tile + r * nr, cols);
                }
            }
        }
    }

    /// <summary>
    /// Bank rows c0..c0+nc as NR-column panels: panel jp at jp * d * nr, and inside it K block k0 (kc wide) as
    /// [kc, nr] at k0 * nr, matching the A blocks of <see cref="Sgemm.PackA"/>. Columns past nc are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBank(float* bank, int d, int c0, int nc, float* dst, int nr, int kcMax)
    {
        int panels = (nc + nr - 1) / nr;
        for (int jp = 0; jp < panels; jp++)
        {
            float* panel = dst + (long)jp * d * nr;
            int cols = Math.Min(nr, nc - jp * nr);
            for (int k0 = 0, kc; k0 < d; k0 += kc)
            {
                kc = Sgemm.KcAt(k0, d, d, kcMax);
                float* block = panel + (long)k0 * nr;
                for (int j = 0; j < nr; j++)
                {
                    float* dcol = block + j;
                    if (j >= cols)
                    {
                        for (int p = 0; p < kc; p++) dcol[p * nr] = 0f;
                        continue;
                    }
                    // One bank row is read contiguously and scattered down a column of the panel.
                    float* src = bank + (long)(c0 + jp * nr + j) * d + k0;
                    int p4 = 0;
                    for (; p4 + 4 <= kc; p4 += 4)
                    {
                        dcol[p4 * nr] = src[p4];
                        dcol[(p4 + 1) * nr] = src[p4 + 1];
                        dcol[(p4 + 2) * nr] = src[p4 + 2];
                        dcol[(p4 + 3) * nr] = src[p4 + 3];
                    }
                    for (; p4 < kc; p4++) dcol[p4 * nr] = src[p4];
                }
            }
        }
    }

    /// <summary>Chunk of bank rows whose dots are handed over at once (stays in L1 for the next query).</summary>
    private const int GemvChunk = 64;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunGemv<TEpilogue>(int d, int q0, int q1, int n0, int n1, float* queries, float* bank, ref TEpilogue epi)
        where TEpilogue : struct, ITileEpilogue
    {
        float* dots = stackalloc float[GemvChunk];
        float* last = stackalloc float[4];
        for (int c0 = n0; c0 < n1; c0 += GemvChunk)
        {
            int count = Math.Min(GemvChunk, n1 - c0);
            for (int q = q0; q < q1; q++)
            {
                float* qv = queries + (long)q * d;
                int i = 0;
                for (; i + 4 <= count; i += 4)
                {
                    float* m = bank + (long)(c0 + i) * d;
                    Dot4(qv, m, m + d, m + 2 * d, m + 3 * d, d, dots + i);
                }
                // The last rows go through the same arithmetic (a row four times), so equal rows give equal dots.
                for (; i < count; i++)
                {
                    float* m = bank + (long)(c0 + i) * d;
                    Dot4(qv, m, m, m, m, d, last);
                    dots[i] = last[0];
                }
                epi.Row(q, q - q0, c0, dots, count);
            }
        }
    }

    /// <summary>q against four consecutive bank rows: four independent accumulator chains hide the FMA latency.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot4(float* q, float* m, float* m1, float* m2, float* m3, int d, float* dst)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated && d >= 16)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; j + 16 <= d; j += 16)
            {
                var qv = Vector512.Load(q + j);
                s0 = Vector512.FusedMultiplyAdd(qv, Vector512.Load(m + j), s0);
                s1 = Vector512.FusedMultiplyAdd(qv, Vector512.Load(m1 + j), s1);
                s2 = Vector512.FusedMultiplyAdd(qv, Vector512.Load(m2 + j), s2);
                s3 = Vector512.FusedMultiplyAdd(qv, Vector512.Load(m3 + j), s3);
            }
            dst[0] = Vector512.Sum(s0); dst[1] = Vector512.Sum(s1); dst[2] = Vector512.Sum(s2); dst[3] = Vector512.Sum(s3);
        }
        else if (Vector256.IsHardwareAccelerated && d >= 8)
        {
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; j + 8 <= d; j += 8)
            {
                var qv = Vector256.Load(q + j);
                s0 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(m + j), s0);
                s1 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(m1 + j), s1);
                s2 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(m2 + j), s2);
                s3 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(m3 + j), s3);
            }
            dst[0] = Vector256.Sum(s0); dst[1] = Vector256.Sum(s1); dst[2] = Vector256.Sum(s2); dst[3] = Vector256.Sum(s3);
        }
        else
        {
            dst[0] = dst[1] = dst[2] = dst[3] = 0f;
        }
        for (; j < d; j++)
        {
            float x = q[j];
            dst[0] += x * m[j]; dst[1] += x * m1[j]; dst[2] += x * m2[j]; dst[3] += x * m3[j];
        }
    }
}
