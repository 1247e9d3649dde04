using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using GpuAnomaly.Kernels.Knn;
using static GpuAnomaly.Kernels.Knn.BankTilesGpu;

namespace GpuAnomaly.Kernels.Memory;

/// <summary>
/// SpCL hybrid memory on an ILGPU accelerator. Score runs the kNN's on-chip tiles (<see cref="BankTilesGpu"/>):
/// each group takes a block of queries and a split of the prototypes, and every thread keeps an online (max, sum of
/// exp, best index) over its own columns of each logit tile, in registers; the group folds its four threads per query
/// together, and with several splits <see cref="ScoreMergeKernel"/> folds the splits (in split order) into the
/// outputs. Update groups the batch by memory row on the host (the indices are read back to check them anyway): one
/// group per distinct row applies that row's occurrences in batch order, so repeated indices are deterministic.
/// Scratch is allocated per call and freed after the queue.
/// </summary>
public sealed class HybridMemoryGpu
{
    /// <summary>Threads per update group (a power of two: the norm's tree reduction).</summary>
    public const int UpdateThreads = 128;
    /// <summary>Threads of the score group that share one query (<see cref="BankTilesGpu.Threads"/> / <see cref="BankTilesGpu.TQ"/>).</summary>
    private const int PerQuery = Threads / TQ;
    private const int MinSplitTiles = 4;
    private const int GroupsPerMultiprocessor = 8;

    private readonly Accelerator _accelerator;
    private readonly Action<KernelConfig, ScoreLaunch, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>> _score;
    private readonly Action<Index1D, ScoreLaunch, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>> _scoreMerge;
    private readonly Action<KernelConfig, HybridMemoryUpdateParams, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>> _update;

    public HybridMemoryGpu(Accelerator accelerator)
    {
        if (accelerator.MaxNumThreadsPerGroup < Threads)
            throw new ArgumentException($"hybrid_memory_score: the kernel needs {Threads} threads per group; {accelerator.Name} allows {accelerator.MaxNumThreadsPerGroup}");
        _accelerator = accelerator;
        _score = accelerator.LoadStreamKernel<ScoreLaunch, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>>(ScoreKernel);
        _scoreMerge = accelerator.LoadAutoGroupedStreamKernel<Index1D, ScoreLaunch, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>>(ScoreMergeKernel);
        _update = accelerator.LoadStreamKernel<HybridMemoryUpdateParams, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>>(UpdateKernel);
    }

    /// <summary>Prototypes per split; 0 (the default) lets <see cref="Score"/> choose. Tests set it to force many splits.</summary>
    internal int SplitRows { get; set; }

    /// <summary>The sizes a score launch needs.</summary>
    public struct ScoreLaunch
    {
        public int Q, P, D, SplitRows, Final;
        public float Tau, InvTau;
    }

    /// <summary>queries [Q, D], memory [P, D], y [Q, 3], best [Q].</summary>
    public void Score(in HybridMemoryScoreParams p, ArrayView<float> queries, ArrayView<float> memory, ArrayView<float> y, ArrayView<int> best)
    {
        p.CheckLengths(queries.Length, memory.Length, y.Length, best.Length);
        int queryBlocks = (p.Q + TQ - 1) / TQ;
        int tiles = (p.P + TN - 1) / TN;
        int splitTiles;
        if (SplitRows > 0) splitTiles = Math.Min((SplitRows + TN - 1) / TN, tiles);
        else
        {
            long target = Math.Max(1, (long)_accelerator.NumMultiprocessors * GroupsPerMultiprocessor);
            long want = Math.Max(1, (target + queryBlocks - 1) / queryBlocks);
            long s = Math.Min(Math.Min(want, Math.Max(1, tiles / MinSplitTiles)), 65535);
            splitTiles = (int)((tiles + s - 1) / s);
        }
        int splitRows = splitTiles * TN, splits = (p.P + splitRows - 1) / splitRows;
        var launch = new ScoreLaunch { Q = p.Q, P = p.P, D = p.D, SplitRows = splitRows, Final = splits == 1 ? 1 : 0, Tau = p.Tau, InvTau = 1f / p.Tau };
        var config = new KernelConfig(new Index3D(queryBlocks, splits, 1), new Index3D(Threads, 1, 1));
        if (splits == 1)
        {
            _score(config, launch, queries, memory, y, y, best);
            return;
        }
        using var max = _accelerator.Allocate1D<float>((long)splits * p.Q);
        using var sum = _accelerator.Allocate1D<float>((long)splits * p.Q);
        using var at = _accelerator.Allocate1D<int>((long)splits * p.Q);
        _score(config, launch, queries, memory, max.View, sum.View, at.View);
        _scoreMerge(p.Q, launch, max.View, sum.View, at.View, y, best);
        // The scratch is freed below: wait for the kernels that still read it.
        _accelerator.DefaultStream.Synchronize();
    }

    /// <summary>Folds (m2, s2, b2) into (m, s, b): the larger max (ties: the lower index) wins, the other sum is rescaled.</summary>
    private static void Fold(ref float m, ref float s, ref int b, float m2, float s2, int b2)
    {
        if (m2 > m || (m2 == m && b2 < b))
        {
            // A zero sum is a state that saw nothing (max -inf): skip its exp(-inf - -inf) = NaN.
            s = s2 + (s != 0f ? s * XMath.Exp(m - m2) : 0f);
            m = m2;
            b = b2;
        }
        else if (s2 != 0f) s += s2 * XMath.Exp(m2 - m);
    }

    private static void WriteOutputs(ScoreLaunch p, int q, float m, float s, int b, ArrayView<float> y, ArrayView<int> best)
    {
        const int O = HybridMemoryScoreParams.Outputs;
        float lse = m + XMath.Log(s);
        y[q * O + HybridMemoryScoreParams.LogSumExp] = lse;
        y[q * O + HybridMemoryScoreParams.BestSimilarity] = m * p.Tau;
        // exp(max - lse) = 1 / sum.
        y[q * O + HybridMemoryScoreParams.BestProbability] = 1f / s;
        // No logit above -inf (all NaN) falls back to prototype 0, as the reference does.
        best[q] = b == int.MaxValue ? 0 : b;
    }

    /// <summary>
    /// Group (query block Grid.IdxX, split Grid.IdxY). Thread tid holds query tid / 4's state over columns
    /// tid % 4, tid % 4 + 4, ... of each tile, in increasing index order (strict &gt; keeps the lower index).
    /// Final = 1: writes y and best; else the split's (max, sum, best) to scratch [splits, Q] (a, b, c).
    /// </summary>
    private static void ScoreKernel(ScoreLaunch p, ArrayView<float> queries, ArrayView<float> memory,
        ArrayView<float> a, ArrayView<float> b, ArrayView<int> c)
    {
        var sQ = SharedMemory.Allocate<float>(QElements);
        var sB = SharedMemory.Allocate<float>(BElements);
        var sT = SharedMemory.Allocate<float>(TileElements);
        var sMax = SharedMemory.Allocate<float>(Threads);
        var sSum = SharedMemory.Allocate<float>(Threads);
        var sAt = SharedMemory.Allocate<int>(Threads);
        int tid = Group.IdxX, slot = tid / PerQuery, part = tid - slot * PerQuery;
        int q0 = Grid.IdxX * TQ, split = Grid.IdxY;
        int n0 = split * p.SplitRows, n1 = IntrinsicMath.Min(p.P, n0 + p.SplitRows);
        float max = float.NegativeInfinity, sum = 0f;
        int at = int.MaxValue;
        bool live = q0 + slot < p.Q;
        for (int t0 = n0; t0 < n1; t0 += TN)
        {
            // The logit tile reads no norms: memory and sT stand in for them.
            Compute(Logit, p.InvTau, p.Q, p.D, q0, t0, n1, queries, memory, memory, sQ, sB, sT, sT);
            Group.Barrier();
            int cols = IntrinsicMath.Min(TN, n1 - t0), row = slot * TilePitch;
            if (live)
                for (int j = part; j < cols; j += PerQuery)
                {
                    float l = sT[row + j];
                    if (l > max) { sum = sum * XMath.Exp(max - l) + 1f; max = l; at = t0 + j; }
                    else if (l != float.NegativeInfinity) sum += XMath.Exp(l - max);
                }
        }
        sMax[tid] = max;
        sSum[tid] = sum;
        sAt[tid] = at;
        Group.Barrier();
        if (part == 0 && live)
        {
            for (int i = 1; i < PerQuery; i++) Fold(ref max, ref sum, ref at, sMax[tid + i], sSum[tid + i], sAt[tid + i]);
            int q = q0 + slot;
            if (p.Final != 0) WriteOutputs(p, q, max, sum, at, a, c);
            else
            {
                int o = split * p.Q + q;
                a[o] = max;
                b[o] = sum;
                c[o] = at;
            }
        }
    }

    /// <summary>One thread per query folds the splits' states in split order.</summary>
    private static void ScoreMergeKernel(Index1D q, ScoreLaunch p, ArrayView<float> max, ArrayView<float> sum, ArrayView<int> at,
        ArrayView<float> y, ArrayView<int> best)
    {
        int splits = (p.P + p.SplitRows - 1) / p.SplitRows;
        float m = float.NegativeInfinity, s = 0f;
        int b = int.MaxValue;
        for (int i = 0; i < splits; i++) Fold(ref m, ref s, ref b, max[i * p.Q + q], sum[i * p.Q + q], at[i * p.Q + q]);
        WriteOutputs(p, q, m, s, b, y, best);
    }

    /// <summary>memory [N, D] updated in place by features [B, D] at rows indices [B].</summary>
    public void Update(in HybridMemoryUpdateParams p, ArrayView<float> memory, ArrayView<float> features, ArrayView<int> indices)
    {
        var host = new int[indices.Length];
        if (host.Length > 0)
        {
            indices.CopyToCPU(_accelerator.DefaultStream, host);
            _accelerator.DefaultStream.Synchronize();
        }
        p.CheckArguments(memory.Length, features.Length, host);
        // Batch items by row, batch order inside a row (a stable sort); starts[g] is group g's first item.
        var order = Enumerable.Range(0, p.B).OrderBy(b => host[b]).ToArray();
        var starts = new List<int>();
        for (int i = 0; i < order.Length; i++)
            if (i == 0 || host[order[i]] != host[order[i - 1]]) starts.Add(i);
        starts.Add(order.Length);
        // A power of two up to D (short rows leave no thread idle; the emulator in the tests pays per thread and barrier).
        int threads = 1;
        while (threads < p.D && threads < UpdateThreads && threads * 2 <= _accelerator.MaxNumThreadsPerGroup) threads *= 2;
        using var dOrder = _accelerator.Allocate1D(order);
        using var dStarts = _accelerator.Allocate1D(starts.ToArray());
        _update(new KernelConfig(new Index3D(starts.Count - 1, 1, 1), new Index3D(threads, 1, 1)), p, memory, features, indices, dOrder.View, dStarts.View);
        // The scratch is freed below: wait for the kernel that still reads it.
        _accelerator.DefaultStream.Synchronize();
    }

    /// <summary>
    /// Group g owns memory row r (its items order[starts[g]..starts[g + 1]]) and applies them one after the other.
    /// Each thread updates the same strided elements every time, so only the norm crosses threads (a tree in shared).
    /// </summary>
    private static void UpdateKernel(HybridMemoryUpdateParams p, ArrayView<float> memory, ArrayView<float> features,
        ArrayView<int> indices, ArrayView<int> order, ArrayView<int> starts)
    {
        var red = SharedMemory.Allocate<float>(UpdateThreads);
        int tid = Group.IdxX, threads = Group.DimX, g = Grid.IdxX, d = p.D;
        float mom = p.Momentum, rest = 1f - p.Momentum;
        int first = starts[g], end = starts[g + 1];
        int r = indices[order[first]] * d;
        for (int o = first; o < end; o++)
        {
            int f = order[o] * d;
            float ss = 0f;
            for (int j = tid; j < d; j += threads)
            {
                float v = mom * memory[r + j] + rest * features[f + j];
                memory[r + j] = v;
                ss += v * v;
            }
            if (p.Normalize == 0) continue; // uniform: every thread skips the barriers together
            red[tid] = ss;
            Group.Barrier();
            for (int h = threads / 2; h > 0; h /= 2)
            {
                if (tid < h) red[tid] += red[tid + h];
                Group.Barrier();
            }
            float norm = XMath.Sqrt(red[0]);
            float inv = norm > 0f ? 1f / norm : 0f;
            for (int j = tid; j < d; j += threads) memory[r + j] *= inv;
            // Everyone has read red[0] before the next item's partial sums overwrite it.
            Group.Barrier();
        }
    }
}
