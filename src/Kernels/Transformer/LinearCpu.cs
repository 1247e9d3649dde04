using System.Numerics;
using System.Runtime.CompilerServices;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// nn.Linear for the `cpu` device. y = x W^T is the SGEMM C = A B with A = x (packed per call, it changes) and
/// B = W^T, which <see cref="LinearPackedWeights"/> holds row-major and padded so that the SGEMM reads its column
/// panels in place (no per-call B packing); the SGEMM splits the work over N and M blocks across the cores.
/// The SGEMM's fused bias is per row of C, and Linear's is per column, so bias and GELU run as one vectorized
/// pass over y afterwards (M N memory traffic against 2 M N K flops). For M &lt;= <see cref="SmallM"/> (the head on a
/// few images) MR-row panels would be mostly padding: a direct loop streams W^T once instead.
/// </summary>
public static unsafe class LinearCpu
{
    internal const int SmallM = 4;
    private const double ParallelFlops = 8e6;
    private const long ParallelEpilogueElements = 1 << 16;

    /// <summary>Weights [N, K] transposed into a per-thread buffer on every call; constant weights use <see cref="PackWeights"/> once.</summary>
    /// <param name="bias">[N], or empty when p.HasBias == 0.</param>
    /// <param name="y">[M, N], every element written.</param>
    public static void Forward(in LinearParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y)
    {
        p.CheckLengths(x.Length, w.Length, bias.Length, y.Length);
        int ldw = (p.N + LinearPackedWeights.ColumnAlign - 1) / LinearPackedWeights.ColumnAlign * LinearPackedWeights.ColumnAlign;
        float* wt = Workspace.Weights((long)p.K * ldw);
        fixed (float* pw = w) LinearPackedWeights.Transpose(pw, p.K, p.N, wt, ldw);
        Run(p, x, wt, ldw, bias, y);
    }

    /// <summary>nn.Linear with weights packed once by <see cref="PackWeights"/>.</summary>
    public static void Forward(in LinearParams p, ReadOnlySpan<float> x, LinearPackedWeights w, ReadOnlySpan<float> bias, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(w);
        p.CheckLengths(x.Length, p.WeightElements, bias.Length, y.Length);
        if (!w.Matches(p)) throw new ArgumentException($"linear: packed weights {w} do not fit {p}");
        Run(p, x, w.Data, w.Ldw, bias, y);
        GC.KeepAlive(w); // its finalizer must not free the memory while the kernels read it
    }

    /// <summary>Packs weights [N, K] (PyTorch layout) for repeated calls.</summary>
    public static LinearPackedWeights PackWeights(in LinearParams p, ReadOnlySpan<float> w)
    {
        p.Validate();
        if (w.Length != p.WeightElements)
            throw new ArgumentException($"linear: weight buffer of {w.Length} floats does not match {p} (expected {p.WeightElements})");
        var packed = new LinearPackedWeights(p.K, p.N);
        fixed (float* pw = w) LinearPackedWeights.Transpose(pw, p.K, p.N, packed.Data, packed.Ldw);
        return packed;
    }

    private static void Run(in LinearParams p, ReadOnlySpan<float> x, float* wt, int ldw, ReadOnlySpan<float> bias, Span<float> y)
    {
        fixed (float* px = x, pb = bias, py = y)
        {
            if (p.M <= SmallM) SmallMGemm(p, px, wt, ldw, py);
            else
            {
                bool use512 = Sgemm.Use512;
                float* a = Workspace.A(Sgemm.PackedASize(p.M, p.K, use512));
                Sgemm.PackA(px, p.K, p.M, p.K, a, use512);
                var problem = new GemmProblem
                {
                    Use512 = use512, Batches = 1, Groups = 1, M = p.M, N = p.N, K = p.K, APacked = (nint)a,
                    C = (nint)py, Ldc = p.N, Act = Activation.None,
                };
                Sgemm.Run(problem, new TransposedWeights { Wt = wt, Ldw = ldw });
            }
            if (p.HasBias != 0 || p.Act != Epilogue.None) ApplyEpilogue(p, p.HasBias != 0 ? pb : null, py);
        }
    }

    /// <summary>y[m, :] = sum_k x[m, k] W^T[k, :], vectorized over N; W^T rows are read once per row of x.</summary>
    private static void SmallMGemm(in LinearParams p, float* x, float* wt, int ldw, float* y)
    {
        int v = Vector<float>.Count, block = 4 * v;
        int blocks = (p.N + block - 1) / block;
        var pp = p;
        if (2.0 * p.M * p.N * p.K < ParallelFlops || blocks == 1)
            for (int b = 0; b < blocks; b++) SmallMBlock(pp, x, wt, ldw, y, b * block);
        else
            CpuParallel.For(0, blocks, b => SmallMBlock(pp, x, wt, ldw, y, b * block));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SmallMBlock(in LinearParams p, float* x, float* wt, int ldw, float* y, int n0)
    {
        int v = Vector<float>.Count;
        float* tmp = stackalloc float[4 * Vector<float>.Count];
        for (int m = 0; m < p.M; m++)
        {
            float* xr = x + (long)m * p.K;
            // ldw is a multiple of 32 >= N, so whole vectors up to the next multiple of v stay inside the row.
            if (n0 + 4 * v <= ldw)
            {
                Vector<float> c0 = default, c1 = default, c2 = default, c3 = default;
                float* wr = wt + n0;
                for (int k = 0; k < p.K; k++, wr += ldw)
                {
                    var xs = new Vector<float>(xr[k]);
                    c0 += xs * Vector.Load(wr);
                    c1 += xs * Vector.Load(wr + v);
                    c2 += xs * Vector.Load(wr + 2 * v);
                    c3 += xs * Vector.Load(wr + 3 * v);
                }
                c0.Store(tmp); c1.Store(tmp + v); c2.Store(tmp + 2 * v); c3.Store(tmp + 3 * v);
            }
            else
            {
                for (int j = 0; j < 4 && n0 + j * v < p.N; j++)
                {
                    Vector<float> c = default;
                    float* wr = wt + n0 + j * v;
                    for (int k = 0; k < p.K; k++, wr += ldw) c += new Vector<float>(xr[k]) * Vector.Load(wr);
                    c.Store(tmp + j * v);
                }
            }
            int cols = Math.Min(4 * v, p.N - n0);
            new ReadOnlySpan<float>(tmp, cols).CopyTo(new Span<float>(y + (long)m * p.N + n0, cols));
        }
    }

    /// <summary>y = act(y + bias) row by row; rows spread over the cores when y is large.</summary>
    private static void ApplyEpilogue(in LinearParams p, float* bias, float* y)
    {
        var pp = p;
        if (p.OutputElements < ParallelEpilogueElements) EpilogueRows(pp, bias, y, 0, p.M);
        else
        {
            int chunks = Math.Min(p.M, CpuParallel.Threads * 4);
            CpuParallel.For(0, chunks, i => EpilogueRows(pp, bias, y, (int)((long)pp.M * i / chunks), (int)((long)pp.M * (i + 1) / chunks)));
        }
    }

    // Hot loop: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void EpilogueRows(in LinearParams p, float* bias, float* y, int m0, int m1)
    {
        int v = Vector<float>.Count;
        bool gelu = p.Act == Epilogue.Gelu;
        for (int m = m0; m < m1; m++)
        {
            float* row = y + (long)m * p.N;
            int n = 0;
            for (; n <= p.N - v; n += v)
            {
                var r = Vector.Load(row + n);
                if (bias != null) r += Vector.Load(bias + n);
                if (gelu) r = Gelu.Apply(r);
                r.Store(row + n);
            }
            if (n == p.N) continue;
            if (bias != null) for (int j = n; j < p.N; j++) row[j] += bias[j];
            if (gelu) GeluCpu.Tail(row + n, row + n, p.N - n);
        }
    }

    /// <summary>B = W^T read in place: rows padded to whole panels, so every panel is direct and Pack is never needed.</summary>
    private struct TransposedWeights : IPanelPacker
    {
        public float* Wt;
        public int Ldw;

        public readonly float* Direct(int batch, int group, int k0, out int ldb, out bool wholePanels)
        {
            ldb = Ldw;
            wholePanels = true;
            return Wt + (long)k0 * Ldw;
        }

        public readonly void Pack(int batch, int group, int k0, int kc, int j0, int nc, float* dst, int nr)
        {
            int panels = (nc + nr - 1) / nr;
            for (int q = 0; q < panels; q++)
                for (int r = 0; r < kc; r++)
                    Unsafe.CopyBlockUnaligned(dst + ((long)q * kc + r) * nr, Wt + (long)(k0 + r) * Ldw + j0 + q * nr, (uint)nr * sizeof(float));
        }
    }
}
