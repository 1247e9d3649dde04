using ILGPU;
using ILGPU.Runtime;
using static GpuAnomaly.Kernels.Knn.BankTilesGpu;

namespace GpuAnomaly.Kernels.Knn;

/// <summary>
/// Exact kNN on an ILGPU accelerator (<see cref="KnnParams"/>), fused: the Q x N distances never reach global memory.
/// <see cref="SearchKernel"/> gives each group a block of <see cref="BankTilesGpu.TQ"/> queries and one split of the
/// bank (the bank is cut so that a single query against a large bank still fills the device); the group walks its
/// split in <see cref="BankTilesGpu.TN"/>-row tiles, each a shared-memory GEMM (<see cref="BankTilesGpu"/>) turned
/// into distance keys, and merges every tile into the queries' sorted top-k lists in shared memory (a candidate is
/// inserted only when it beats the current k-th). With one split the lists are the result; with several, each split
/// writes its lists to scratch [splits, Q, K] and <see cref="MergeKernel"/> (one group per query) picks the best k.
/// Keys are compared as (key, index) pairs everywhere, so ties come out lower index first whatever the split. The
/// scratch is allocated per call and freed after the queue.
/// </summary>
public sealed class KnnGpu
{
    /// <summary>Most threads per merge group (a power of two: a tree of lists; 64 lists of 64 pairs are 32 KB of shared memory).</summary>
    public const int MergeThreads = 64;
    /// <summary>A split is at least this many tiles: fewer would cost more in the merge than it gains in occupancy.</summary>
    private const int MinSplitTiles = 4;
    /// <summary>Groups per multiprocessor aimed at (31 KB of shared memory each: several fit on one SM).</summary>
    private const int GroupsPerMultiprocessor = 8;

    private readonly Accelerator _accelerator;
    private readonly Action<Index1D, int, ArrayView<float>, ArrayView<float>> _rowNorms;
    private readonly Action<KernelConfig, SearchLaunch, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>> _search;
    private readonly Action<KernelConfig, SearchLaunch, int, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>> _merge;

    public KnnGpu(Accelerator accelerator)
    {
        if (accelerator.MaxNumThreadsPerGroup < Threads)
            throw new ArgumentException($"knn: the search kernel needs {Threads} threads per group; {accelerator.Name} allows {accelerator.MaxNumThreadsPerGroup}");
        _accelerator = accelerator;
        _rowNorms = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, ArrayView<float>, ArrayView<float>>(RowNormsKernel);
        _search = accelerator.LoadStreamKernel<SearchLaunch, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>>(SearchKernel);
        _merge = accelerator.LoadStreamKernel<SearchLaunch, int, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>>(MergeKernel);
    }

    /// <summary>Bank rows per split; 0 (the default) lets <see cref="Forward"/> choose. Tests set it to force many splits.</summary>
    internal int SplitRows { get; set; }

    /// <summary>Squared L2 norm of every row of rows [n, d] into norms [n] (the L2 search's precomputed input).</summary>
    public void RowNorms(int n, int d, ArrayView<float> rows, ArrayView<float> norms)
    {
        if (n < 1 || d < 1 || rows.Length != (long)n * d || norms.Length != n)
            throw new ArgumentException($"row_norms: rows {rows.Length}, norms {norms.Length} do not fit N={n} D={d}");
        _rowNorms(n, d, rows, norms);
    }

    /// <summary>queries [Q, D], bank [N, D], bankNorms [N] (L2; empty for the inner product), distances and indices [Q, K].</summary>
    public void Forward(in KnnParams p, ArrayView<float> queries, ArrayView<float> bank, ArrayView<float> bankNorms,
        ArrayView<float> distances, ArrayView<int> indices)
    {
        p.CheckLengths(queries.Length, bank.Length, bankNorms.Length, distances.Length, indices.Length);
        int queryBlocks = (p.Q + TQ - 1) / TQ;
        int splitRows = ChooseSplitRows(p.N, queryBlocks);
        int splits = (p.N + splitRows - 1) / splitRows;
        var launch = new SearchLaunch
        {
            Q = p.Q, N = p.N, D = p.D, K = p.K, L2 = p.Metric == KnnMetric.L2 ? 1 : 0, SplitRows = splitRows, Final = splits == 1 ? 1 : 0,
        };
        // The inner product reads no norms; any valid view stands in for the empty one.
        var norms = launch.L2 != 0 ? bankNorms : bank;
        var search = new KernelConfig(new Index3D(queryBlocks, splits, 1), new Index3D(Threads, 1, 1));
        if (splits == 1)
        {
            _search(search, launch, queries, bank, norms, distances, indices);
            return;
        }
        using var keys = _accelerator.Allocate1D<float>((long)splits * p.Q * p.K);
        using var idx = _accelerator.Allocate1D<int>((long)splits * p.Q * p.K);
        _search(search, launch, queries, bank, norms, keys.View, idx.View);
        // No more merge threads than splits (the emulator in the tests pays per thread and per barrier).
        int threads = 1;
        while (threads < splits && threads < MergeThreads && threads * 2 <= _accelerator.MaxNumThreadsPerGroup) threads *= 2;
        _merge(new KernelConfig(new Index3D(p.Q, 1, 1), new Index3D(threads, 1, 1)), launch, splits, keys.View, idx.View, distances, indices);
        // The scratch is freed below: wait for the kernels that still read it.
        _accelerator.DefaultStream.Synchronize();
    }

    /// <summary>
    /// Rows per split, a multiple of the tile: enough groups to fill the multiprocessors several times over, but no
    /// split under <see cref="MinSplitTiles"/> tiles.
    /// </summary>
    private int ChooseSplitRows(int n, int queryBlocks)
    {
        int tiles = (n + TN - 1) / TN;
        if (SplitRows > 0) return Math.Min((SplitRows + TN - 1) / TN, tiles) * TN;
        long target = Math.Max(1, (long)_accelerator.NumMultiprocessors * GroupsPerMultiprocessor);
        long want = Math.Max(1, (target + queryBlocks - 1) / queryBlocks);
        long splits = Math.Min(Math.Min(want, Math.Max(1, tiles / MinSplitTiles)), 65535); // grid Y is at most 65535
        return (int)((tiles + splits - 1) / splits) * TN;
    }

    /// <summary>The sizes a search or merge launch needs (one struct: the launchers stay within ILGPU's parameter count).</summary>
    public struct SearchLaunch
    {
        public int Q, N, D, K, L2, SplitRows, Final;
    }

    /// <summary>One thread per row; four partial sums hide the FMA latency.</summary>
    private static void RowNormsKernel(Index1D i, int d, ArrayView<float> rows, ArrayView<float> norms)
    {
        int b = i * d, j = 0;
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        for (; j + 3 < d; j += 4)
        {
            float x0 = rows[b + j], x1 = rows[b + j + 1], x2 = rows[b + j + 2], x3 = rows[b + j + 3];
            s0 += x0 * x0; s1 += x1 * x1; s2 += x2 * x2; s3 += x3 * x3;
        }
        for (; j < d; j++) { float x = rows[b + j]; s0 += x * x; }
        norms[i] = (s0 + s1) + (s2 + s3);
    }

    /// <summary>(key, index) pairs: smaller key first, then lower index.</summary>
    private static bool Better(float key, int index, float thanKey, int thanIndex) => key < thanKey || (key == thanKey && index < thanIndex);

    /// <summary>
    /// Group (query block Grid.IdxX, split Grid.IdxY). Lists start full of (+inf, int.MaxValue) sentinels, so the
    /// threshold test needs no count: every real row, NaN ones included (their key is +inf), beats a sentinel, and
    /// K &lt;= N leaves no sentinel in the final top-k. Final = 1 (one split): the lists are written as the result.
    /// </summary>
    private static void SearchKernel(SearchLaunch p, ArrayView<float> queries, ArrayView<float> bank, ArrayView<float> norms,
        ArrayView<float> outKeys, ArrayView<int> outIdx)
    {
        var sQ = SharedMemory.Allocate<float>(QElements);
        var sB = SharedMemory.Allocate<float>(BElements);
        var sT = SharedMemory.Allocate<float>(TileElements);
        var sQn = SharedMemory.Allocate<float>(TQ);
        var sKey = SharedMemory.Allocate<float>(TQ * KnnParams.MaxK);
        var sIdx = SharedMemory.Allocate<int>(TQ * KnnParams.MaxK);
        int tid = Group.IdxX, k = p.K, d = p.D;
        int q0 = Grid.IdxX * TQ, split = Grid.IdxY;
        int n0 = split * p.SplitRows, n1 = IntrinsicMath.Min(p.N, n0 + p.SplitRows);
        for (int e = tid; e < TQ * k; e += Threads) { sKey[e] = float.PositiveInfinity; sIdx[e] = int.MaxValue; }
        if (tid < TQ)
        {
            // |q|^2 once per group (the L2 key's first term); D steps by one thread, small beside the tiles.
            float s0 = 0f, s1 = 0f;
            int row = q0 + tid;
            if (p.L2 != 0 && row < p.Q)
            {
                int b = row * d, j = 0;
                for (; j + 1 < d; j += 2) { float x0 = queries[b + j], x1 = queries[b + j + 1]; s0 += x0 * x0; s1 += x1 * x1; }
                if (j < d) { float x = queries[b + j]; s0 += x * x; }
            }
            sQn[tid] = s0 + s1;
        }
        int mode = p.L2 != 0 ? KeyL2 : KeyInnerProduct;
        for (int t0 = n0; t0 < n1; t0 += TN)
        {
            Compute(mode, 1f, p.Q, d, q0, t0, n1, queries, bank, norms, sQ, sB, sT, sQn);
            Group.Barrier();
            // One thread per query merges the tile into its list. The next tile's first barrier (in Compute) waits for
            // these threads before anyone writes sT again.
            if (tid < TQ && q0 + tid < p.Q)
            {
                int at = tid * k, last = at + k - 1, cols = IntrinsicMath.Min(TN, n1 - t0);
                float worst = sKey[last];
                int worstIdx = sIdx[last];
                for (int c = 0; c < cols; c++)
                {
                    float key = sT[tid * TilePitch + c];
                    int index = t0 + c;
                    if (!Better(key, index, worst, worstIdx)) continue;
                    int pos = last;
                    while (pos > at && Better(key, index, sKey[pos - 1], sIdx[pos - 1]))
                    {
                        sKey[pos] = sKey[pos - 1];
                        sIdx[pos] = sIdx[pos - 1];
                        pos--;
                    }
                    sKey[pos] = key;
                    sIdx[pos] = index;
                    worst = sKey[last];
                    worstIdx = sIdx[last];
                }
            }
        }
        Group.Barrier();
        for (int e = tid; e < TQ * k; e += Threads)
        {
            int s = e / k, q = q0 + s;
            if (q >= p.Q) continue;
            int i = e - s * k;
            int o = p.Final != 0 ? q * k + i : (split * p.Q + q) * k + i;
            float key = sKey[e];
            outKeys[o] = p.Final != 0 && p.L2 == 0 ? -key : key;
            outIdx[o] = sIdx[e];
        }
    }

    /// <summary>
    /// One group per query. Thread t folds splits t, t + T, ... into its own sorted list in shared memory (each split's
    /// list is sorted, so its first entry that fails the threshold ends it), then a tree folds the threads' lists into
    /// thread 0's, one barrier per level. (key, index) pairs are unique (each bank row lives in one split) and the
    /// sentinels lose to every real row, so the result does not depend on the fold order.
    /// </summary>
    private static void MergeKernel(SearchLaunch p, int splits, ArrayView<float> keys, ArrayView<int> idx,
        ArrayView<float> distances, ArrayView<int> indices)
    {
        var lKey = SharedMemory.Allocate<float>(MergeThreads * KnnParams.MaxK);
        var lIdx = SharedMemory.Allocate<int>(MergeThreads * KnnParams.MaxK);
        int tid = Group.IdxX, threads = Group.DimX, q = Grid.IdxX, k = p.K, at = tid * k;
        for (int i = 0; i < k; i++) { lKey[at + i] = float.PositiveInfinity; lIdx[at + i] = int.MaxValue; }
        for (int s = tid; s < splits; s += threads)
        {
            int o = (s * p.Q + q) * k;
            for (int i = 0; i < k; i++)
                if (!Insert(lKey, lIdx, at, k, keys[o + i], idx[o + i])) break;
        }
        for (int h = threads / 2; h > 0; h /= 2)
        {
            Group.Barrier();
            if (tid < h)
            {
                int from = (tid + h) * k;
                for (int i = 0; i < k; i++)
                    if (!Insert(lKey, lIdx, at, k, lKey[from + i], lIdx[from + i])) break;
            }
        }
        Group.Barrier();
        for (int i = tid; i < k; i += threads)
        {
            distances[q * k + i] = p.L2 != 0 ? lKey[i] : -lKey[i];
            indices[q * k + i] = lIdx[i];
        }
    }

    /// <summary>Sorted insertion into the k-long list at <paramref name="at"/>; false (nothing changed) when the pair does not beat the k-th.</summary>
    private static bool Insert(ArrayView<float> lKey, ArrayView<int> lIdx, int at, int k, float key, int index)
    {
        int pos = at + k - 1;
        if (!Better(key, index, lKey[pos], lIdx[pos])) return false;
        while (pos > at && Better(key, index, lKey[pos - 1], lIdx[pos - 1]))
        {
            lKey[pos] = lKey[pos - 1];
            lIdx[pos] = lIdx[pos - 1];
            pos--;
        }
        lKey[pos] = key;
        lIdx[pos] = index;
        return true;
    }
}
