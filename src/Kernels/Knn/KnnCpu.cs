using GpuAnomaly.Kernels.Cpu;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuAnomaly.Kernels.Knn;

/// <summary>
/// Exact kNN on the `cpu` device (<see cref="KnnParams"/>): dot-product tiles from <see cref="BankTiles"/>, turned into
/// distances and merged into each query's running top-k in the tile epilogue, so the Q x N distances never reach
/// memory. Tasks are (query block, bank block) pairs with their own top-k lists, merged per query at the end.
/// </summary>
public static unsafe class KnnCpu
{
    /// <summary>Squared L2 norm of every row of rows [n, d].</summary>
    public static void RowNorms(int n, int d, ReadOnlySpan<float> rows, Span<float> norms)
    {
        if (n < 1 || d < 1 || rows.Length != (long)n * d || norms.Length != n)
            throw new ArgumentException($"row_norms: rows {rows.Length}, norms {norms.Length} do not fit N={n} D={d}");
        fixed (float* pr = rows, pn = norms)
        {
            nint r = (nint)pr, o = (nint)pn;
            const int Chunk = 4096;
            int chunks = (n + Chunk - 1) / Chunk;
            if (chunks == 1 || (long)n * d < 1 << 18)
                for (int i = 0; i < n; i++) pn[i] = SquaredNorm(pr + (long)i * d, d);
            else
                CpuParallel.For(0, chunks, c =>
                {
                    int i1 = Math.Min(n, (c + 1) * Chunk);
                    for (int i = c * Chunk; i < i1; i++) ((float*)o)[i] = SquaredNorm((float*)r + (long)i * d, d);
                });
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float SquaredNorm(float* x, int d)
    {
        int j = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && d >= 16)
        {
            Vector512<float> s0 = default, s1 = default;
            for (; j + 32 <= d; j += 32)
            {
                var a = Vector512.Load(x + j); var b = Vector512.Load(x + j + 16);
                s0 = Vector512.FusedMultiplyAdd(a, a, s0); s1 = Vector512.FusedMultiplyAdd(b, b, s1);
            }
            for (; j + 16 <= d; j += 16) { var a = Vector512.Load(x + j); s0 = Vector512.FusedMultiplyAdd(a, a, s0); }
            s = Vector512.Sum(s0 + s1);
        }
        else if (Vector256.IsHardwareAccelerated && d >= 8)
        {
            Vector256<float> s0 = default;
            for (; j + 8 <= d; j += 8) { var a = Vector256.Load(x + j); s0 = Vector256.FusedMultiplyAdd(a, a, s0); }
            s = Vector256.Sum(s0);
        }
        for (; j < d; j++) s += x[j] * x[j];
        return s;
    }

    public static void Forward(in KnnParams p, ReadOnlySpan<float> queries, ReadOnlySpan<float> bank, ReadOnlySpan<float> bankNorms,
        Span<float> distances, Span<int> indices)
    {
        p.CheckLengths(queries.Length, bank.Length, bankNorms.Length, distances.Length, indices.Length);
        bool l2 = p.Metric == KnnMetric.L2;
        var lay = new BankTiles.Layout(p.Q, p.N, p.D);
        var lists = new TopK[lay.Tasks];
        var queryNorms = l2 ? new float[p.Q] : null;
        int k = p.K;
        fixed (float* pq = queries, pb = bank, pn = bankNorms, pqn = queryNorms)
        {
            if (l2) for (int q = 0; q < p.Q; q++) pqn[q] = SquaredNorm(pq + (long)q * p.D, p.D);
            float* ap = BankTiles.PackQueries(lay, pq);
            nint q0 = (nint)pq, a0 = (nint)ap, b0 = (nint)pb, n0 = (nint)pn, qn0 = (nint)pqn;
            var layout = lay;
            void Task(int t)
            {
                int rows = Math.Min(layout.QueryRows, layout.Q - t % layout.QueryBlocks * layout.QueryRows);
                var epi = new TopKEpilogue(new TopK(rows, k), l2, (float*)n0, (float*)qn0);
                BankTiles.Run(layout, t, (float*)q0, (float*)a0, (float*)b0, ref epi);
                lists[t] = epi.List;
            }
            if (lay.Tasks == 1) Task(0);
            else CpuParallel.For(0, lay.Tasks, Task);
        }
        Merge(lay, lists, k, l2, distances, indices);
    }

    /// <summary>Per query, the bank blocks' lists in bank order: equal keys keep the lower index first.</summary>
    private static void Merge(in BankTiles.Layout lay, TopK[] lists, int k, bool l2, Span<float> distances, Span<int> indices)
    {
        var keys = new float[k];
        var idx = new int[k];
        for (int qb = 0; qb < lay.QueryBlocks; qb++)
        {
            int q0 = qb * lay.QueryRows, rows = Math.Min(lay.QueryRows, lay.Q - q0);
            for (int s = 0; s < rows; s++)
            {
                int n = 0;
                for (int bb = 0; bb < lay.BankBlocks; bb++)
                {
                    var l = lists[bb * lay.QueryBlocks + qb];
                    int c = l.Count[s], at = s * k;
                    // Later blocks hold higher indices: an equal key goes after what is already there.
                    for (int i = 0; i < c; i++) n = TopK.Insert(keys, idx, n, k, l.Keys[at + i], l.Index[at + i]);
                }
                int o = (q0 + s) * k;
                for (int i = 0; i < k; i++)
                {
                    // Fewer than k candidates only when a distance was NaN: leave that visible.
                    distances[o + i] = i < n ? (l2 ? keys[i] : -keys[i]) : float.NaN;
                    indices[o + i] = i < n ? idx[i] : -1;
                }
            }
        }
    }

    /// <summary>
    /// Sorted top-k lists of one task's queries by key (smaller is better: the L2 distance, or minus the inner product).
    /// <see cref="Worst"/> is the key a candidate must beat: +infinity until a list is full.
    /// </summary>
    internal sealed class TopK
    {
        public readonly float[] Keys, Worst;
        public readonly int[] Index, Count;

        public TopK(int rows, int k)
        {
            Keys = new float[rows * k];
            Index = new int[rows * k];
            Count = new int[rows];
            Worst = new float[rows];
            Array.Fill(Worst, float.PositiveInfinity);
        }

        /// <summary>Inserts (key, index) into the n-long list, keeping at most k; returns the new length.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Insert(Span<float> keys, Span<int> idx, int n, int k, float key, int index)
        {
            if (n == k && !(key < keys[k - 1])) return n;
            int pos = n == k ? k - 1 : n;
            while (pos > 0 && keys[pos - 1] > key)
            {
                keys[pos] = keys[pos - 1];
                idx[pos] = idx[pos - 1];
                pos--;
            }
            keys[pos] = key;
            idx[pos] = index;
            return n == k ? k : n + 1;
        }
    }

    /// <summary>Turns a tile row of dots into keys, rejecting 16 at a time against the query's worst kept key.</summary>
    private struct TopKEpilogue : ITileEpilogue
    {
        public readonly TopK List;
        private readonly bool _l2;
        private readonly float* _bankNorms, _queryNorms;
        private readonly int _k;

        public TopKEpilogue(TopK list, bool l2, float* bankNorms, float* queryNorms)
        {
            List = list; _l2 = l2; _bankNorms = bankNorms; _queryNorms = queryNorms;
            _k = list.Count.Length == 0 ? 0 : list.Keys.Length / list.Count.Length;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly float Key(int query, int col, float dot) =>
            _l2 ? MathF.Max(_queryNorms[query] + _bankNorms[col] - 2f * dot, 0f) : -dot;

        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public readonly void Row(int query, int slot, int col0, float* dots, int count)
        {
            float worst = List.Worst[slot];
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var qn = Vector512.Create(_l2 ? _queryNorms[query] : 0f);
                for (; j + 16 <= count; j += 16)
                {
                    var dv = Vector512.Load(dots + j);
                    var key = _l2 ? Vector512.Max(qn + Vector512.Load(_bankNorms + col0 + j) - (dv + dv), Vector512<float>.Zero) : -dv;
                    ulong mask = Vector512.LessThan(key, Vector512.Create(worst)).ExtractMostSignificantBits();
                    while (mask != 0)
                    {
                        int bit = BitOperations.TrailingZeroCount(mask);
                        worst = Offer(slot, key.GetElement(bit), col0 + j + bit);
                        mask &= mask - 1;
                    }
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var qn = Vector256.Create(_l2 ? _queryNorms[query] : 0f);
                for (; j + 8 <= count; j += 8)
                {
                    var dv = Vector256.Load(dots + j);
                    var key = _l2 ? Vector256.Max(qn + Vector256.Load(_bankNorms + col0 + j) - (dv + dv), Vector256<float>.Zero) : -dv;
                    uint mask = Vector256.LessThan(key, Vector256.Create(worst)).ExtractMostSignificantBits();
                    while (mask != 0)
                    {
                        int bit = BitOperations.TrailingZeroCount(mask);
                        worst = Offer(slot, key.GetElement(bit), col0 + j + bit);
                        mask &= mask - 1;
                    }
                }
            }
            for (; j < count; j++)
            {
                float key = Key(query, col0 + j, dots[j]);
                if (key < worst) worst = Offer(slot, key, col0 + j);
            }
        }

        /// <summary>Inserts a candidate that beat the old worst; returns the new worst.</summary>
        private readonly float Offer(int slot, float key, int index)
        {
            int k = _k, at = slot * k;
            var keys = new Span<float>(List.Keys, at, k);
            int n = List.Count[slot] = TopK.Insert(keys, new Span<int>(List.Index, at, k), List.Count[slot], k, key, index);
            return List.Worst[slot] = n == k ? keys[k - 1] : float.PositiveInfinity;
        }
    }
}
