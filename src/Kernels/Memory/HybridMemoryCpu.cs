using GpuAnomaly.Kernels.Cpu;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GpuAnomaly.Kernels.Knn;

namespace GpuAnomaly.Kernels.Memory;

/// <summary>
/// SpCL hybrid memory on the `cpu` device. Score runs the kNN's tile engine (<see cref="BankTiles"/>) with an
/// epilogue that keeps, per query, an online (max, sum of exp) of the logits and the best index; Update is the
/// momentum step with renormalization, row by row in batch order.
/// </summary>
public static unsafe class HybridMemoryCpu
{
    public static void Score(in HybridMemoryScoreParams p, ReadOnlySpan<float> queries, ReadOnlySpan<float> memory, Span<float> y, Span<int> best)
    {
        p.CheckLengths(queries.Length, memory.Length, y.Length, best.Length);
        var lay = new BankTiles.Layout(p.Q, p.P, p.D);
        var states = new SoftmaxState[lay.Tasks];
        float invTau = 1f / p.Tau;
        fixed (float* pq = queries, pm = memory)
        {
            float* ap = BankTiles.PackQueries(lay, pq);
            nint q0 = (nint)pq, a0 = (nint)ap, m0 = (nint)pm;
            var layout = lay;
            void Task(int t)
            {
                int rows = Math.Min(layout.QueryRows, layout.Q - t % layout.QueryBlocks * layout.QueryRows);
                var epi = new SoftmaxEpilogue(new SoftmaxState(rows), invTau);
                BankTiles.Run(layout, t, (float*)q0, (float*)a0, (float*)m0, ref epi);
                states[t] = epi.State;
            }
            if (lay.Tasks == 1) Task(0);
            else CpuParallel.For(0, lay.Tasks, Task);
        }
        const int O = HybridMemoryScoreParams.Outputs;
        for (int qb = 0; qb < lay.QueryBlocks; qb++)
        {
            int first = qb * lay.QueryRows, rows = Math.Min(lay.QueryRows, lay.Q - first);
            for (int s = 0; s < rows; s++)
            {
                // Blocks in memory order: a strictly larger max is needed to move the best index (ties: lower).
                double max = double.NegativeInfinity, sum = 0;
                int at = 0;
                for (int bb = 0; bb < lay.BankBlocks; bb++)
                {
                    var st = states[bb * lay.QueryBlocks + qb];
                    double m = st.Max[s];
                    if (m > max)
                    {
                        sum = sum * Math.Exp(max - m) + st.Sum[s];
                        max = m;
                        at = st.Best[s];
                    }
                    else sum += st.Sum[s] * Math.Exp(m - max);
                }
                int q = first + s;
                double lse = max + Math.Log(sum);
                y[q * O + HybridMemoryScoreParams.LogSumExp] = (float)lse;
                y[q * O + HybridMemoryScoreParams.BestSimilarity] = (float)(max * p.Tau);
                y[q * O + HybridMemoryScoreParams.BestProbability] = (float)Math.Exp(max - lse);
                best[q] = at;
            }
        }
    }

    /// <summary>One task's per-query running max logit, sum of exp(logit - max), and the index of the max.</summary>
    private sealed class SoftmaxState
    {
        public readonly float[] Max;
        public readonly double[] Sum;
        public readonly int[] Best;

        public SoftmaxState(int rows)
        {
            Max = new float[rows];
            Sum = new double[rows];
            Best = new int[rows];
            Array.Fill(Max, float.NegativeInfinity);
        }
    }

    private struct SoftmaxEpilogue : ITileEpilogue
    {
        public readonly SoftmaxState State;
        private readonly float _invTau;

        public SoftmaxEpilogue(SoftmaxState state, float invTau) { State = state; _invTau = invTau; }

        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public readonly void Row(int query, int slot, int col0, float* dots, int count)
        {
            float max = State.Max[slot];
            int at = State.Best[slot];
            // The row's max first (and its first index), then the row's exps relative to the new running max.
            for (int j = 0; j < count; j++)
            {
                float l = dots[j] * _invTau;
                if (l > max) { max = l; at = col0 + j; }
            }
            double sum = State.Sum[slot];
            float old = State.Max[slot];
            if (max > old && sum != 0) sum *= Math.Exp((double)old - max);
            int i = 0;
            float rowSum = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var m = Vector512.Create(max);
                var acc = Vector512<float>.Zero;
                var scale = Vector512.Create(_invTau);
                for (; i + 16 <= count; i += 16)
                    acc += Vector512.Exp(Vector512.Load(dots + i) * scale - m);
                rowSum = Vector512.Sum(acc);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var m = Vector256.Create(max);
                var acc = Vector256<float>.Zero;
                var scale = Vector256.Create(_invTau);
                for (; i + 8 <= count; i += 8)
                    acc += Vector256.Exp(Vector256.Load(dots + i) * scale - m);
                rowSum = Vector256.Sum(acc);
            }
            for (; i < count; i++) rowSum += MathF.Exp(dots[i] * _invTau - max);
            State.Sum[slot] = sum + rowSum;
            State.Max[slot] = max;
            State.Best[slot] = at;
        }
    }

    /// <summary>v_r &lt;- m v_r + (1 - m) f_b, then (Normalize = 1) v_r / ||v_r|| (a zero row stays zero); batch items in order.</summary>
    public static void Update(in HybridMemoryUpdateParams p, Span<float> memory, ReadOnlySpan<float> features, ReadOnlySpan<int> indices)
    {
        p.CheckArguments(memory.Length, features.Length, indices);
        int d = p.D;
        float mom = p.Momentum, rest = 1f - p.Momentum;
        fixed (float* pm = memory, pf = features)
        {
            for (int b = 0; b < p.B; b++)
            {
                float* v = pm + (long)indices[b] * d, f = pf + (long)b * d;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var vm = Vector512.Create(mom); var vr = Vector512.Create(rest);
                    for (; j + 16 <= d; j += 16) Vector512.FusedMultiplyAdd(vm, Vector512.Load(v + j), Vector512.Load(f + j) * vr).Store(v + j);
                }
                for (; j < d; j++) v[j] = MathF.FusedMultiplyAdd(mom, v[j], f[j] * rest);
                if (p.Normalize == 0) continue; // an L2 memory bank keeps the plain moving average
                double norm = Math.Sqrt(KnnCpu.SquaredNorm(v, d));
                float inv = norm > 0 ? (float)(1.0 / norm) : 0f;
                j = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var s = Vector512.Create(inv);
                    for (; j + 16 <= d; j += 16) (Vector512.Load(v + j) * s).Store(v + j);
                }
                for (; j < d; j++) v[j] *= inv;
            }
        }
    }
}
