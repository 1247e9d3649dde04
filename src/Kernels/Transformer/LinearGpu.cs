using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// nn.Linear on an ILGPU accelerator, two explicitly grouped kernels:
/// <list type="bullet">
/// <item>Tiled GEMM: a group of 16 x 16 threads computes a 64 x 64 tile of y, each thread 4 x 4 outputs at a stride of 16
///   rows and 16 columns (so consecutive threads touch consecutive columns: conflict-free shared reads, coalesced
///   stores). K advances 16 at a time through shared tiles of x and W stored k-major; the 4 x 4 update is unrolled by
///   hand (ILGPU 1.5.3 does not unroll). Bias and GELU are applied in the epilogue.</item>
/// <item>GEMV (M &lt;= <see cref="GemvMaxM"/>): a 64-row tile would be almost all padding, so one warp takes one weight row
///   (output column n) for every row of x: the lanes stride over K (coalesced reads of W), then a shuffle reduction.</item>
/// </list>
/// </summary>
public sealed class LinearGpu
{
    public const int GemvMaxM = 4;
    private const int Tile = 64, TileK = 16, Threads = 16;
    private const int WarpsPerGroup = 4;
    private readonly Action<KernelConfig, LinearParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _gemm;
    private readonly Action<KernelConfig, LinearParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _gemv;
    private readonly int _warpSize;

    public LinearGpu(Accelerator accelerator)
    {
        if (accelerator.MaxNumThreadsPerGroup < Threads * Threads)
            throw new NotSupportedException($"linear: the accelerator allows {accelerator.MaxNumThreadsPerGroup} threads per group, the tiled GEMM needs {Threads * Threads}");
        _gemm = accelerator.LoadStreamKernel<LinearParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(GemmKernel);
        _gemv = accelerator.LoadStreamKernel<LinearParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(GemvKernel);
        _warpSize = accelerator.WarpSize;
    }

    /// <summary>Queues y = act(x W^T + bias) on the default stream; does not synchronize.</summary>
    /// <param name="x">[M, K].</param>
    /// <param name="w">[N, K] (PyTorch layout).</param>
    /// <param name="bias">[N], or default (length 0) when p.HasBias == 0.</param>
    /// <param name="y">[M, N], every element written.</param>
    public void Forward(in LinearParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        p.CheckLengths(x.Length, w.Length, bias.Length, y.Length);
        if (p.M <= GemvMaxM)
        {
            int groups = (p.N + WarpsPerGroup - 1) / WarpsPerGroup;
            _gemv(new KernelConfig(groups, WarpsPerGroup * _warpSize), p, x, w, bias, y);
        }
        else
        {
            var grid = new Index2D((p.N + Tile - 1) / Tile, (p.M + Tile - 1) / Tile);
            _gemm(new KernelConfig(grid, new Index2D(Threads, Threads)), p, x, w, bias, y);
        }
    }

    private static void GemmKernel(LinearParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        // k-major tiles: sx[k * 64 + row], sw[k * 64 + col].
        var sx = SharedMemory.Allocate<float>(TileK * Tile);
        var sw = SharedMemory.Allocate<float>(TileK * Tile);
        int tx = Group.IdxX, ty = Group.IdxY, tid = ty * Threads + tx;
        int n0 = Grid.IdxX * Tile, m0 = Grid.IdxY * Tile;
        int M = p.M, N = p.N, K = p.K;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        // Loading: 64 rows x 16 k per tile = 4 elements per thread; 16 consecutive threads read 16 consecutive k of one row.
        int lk = tid % TileK, lr = tid / TileK;
        for (int k0 = 0; k0 < K; k0 += TileK)
        {
            int k = k0 + lk;
            for (int i = 0; i < 4; i++)
            {
                int r = lr + 16 * i;
                int m = m0 + r, n = n0 + r;
                sx[lk * Tile + r] = m < M && k < K ? x[(long)m * K + k] : 0f;
                sw[lk * Tile + r] = n < N && k < K ? w[(long)n * K + k] : 0f;
            }
            Group.Barrier();
            for (int kk = 0; kk < TileK; kk++)
            {
                int xo = kk * Tile + ty, wo = kk * Tile + tx;
                float a0 = sx[xo], a1 = sx[xo + 16], a2 = sx[xo + 32], a3 = sx[xo + 48];
                float b0 = sw[wo], b1 = sw[wo + 16], b2 = sw[wo + 32], b3 = sw[wo + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier(); // everyone is done with this tile before it is overwritten
        }
        int row = m0 + ty, col = n0 + tx;
        Store(p, bias, y, row, col, c00, c01, c02, c03);
        Store(p, bias, y, row + 16, col, c10, c11, c12, c13);
        Store(p, bias, y, row + 32, col, c20, c21, c22, c23);
        Store(p, bias, y, row + 48, col, c30, c31, c32, c33);
    }

    /// <summary>Writes one row's four outputs (columns col, col+16, col+32, col+48) through the epilogue.</summary>
    private static void Store(LinearParams p, ArrayView<float> bias, ArrayView<float> y, int row, int col, float v0, float v1, float v2, float v3)
    {
        if (row >= p.M) return;
        long o = (long)row * p.N;
        if (col < p.N) y[o + col] = Epilogue(p, bias, col, v0);
        if (col + 16 < p.N) y[o + col + 16] = Epilogue(p, bias, col + 16, v1);
        if (col + 32 < p.N) y[o + col + 32] = Epilogue(p, bias, col + 32, v2);
        if (col + 48 < p.N) y[o + col + 48] = Epilogue(p, bias, col + 48, v3);
    }

    private static float Epilogue(LinearParams p, ArrayView<float> bias, int n, float v)
    {
        if (p.HasBias != 0) v += bias[n];
        return p.Act == Transformer.Epilogue.Gelu ? Gelu.Apply(v) : v;
    }

    /// <summary>One warp per output column n, all M (&lt;= 4) rows of x at once.</summary>
    private static void GemvKernel(LinearParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        int lane = Warp.LaneIdx, ws = Warp.WarpSize;
        int n = Grid.IdxX * WarpsPerGroup + Warp.WarpIdx;
        if (n >= p.N) return; // a whole warp leaves together: the shuffles below stay complete
        int K = p.K, M = p.M;
        long wRow = (long)n * K;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int k = lane; k < K; k += ws)
        {
            float wk = w[wRow + k];
            s0 += wk * x[k];
            if (M > 1) s1 += wk * x[K + k];
            if (M > 2) s2 += wk * x[2 * K + k];
            if (M > 3) s3 += wk * x[3 * K + k];
        }
        for (int offset = ws / 2; offset > 0; offset /= 2)
        {
            s0 += Warp.ShuffleDown(s0, offset);
            s1 += Warp.ShuffleDown(s1, offset);
            s2 += Warp.ShuffleDown(s2, offset);
            s3 += Warp.ShuffleDown(s3, offset);
        }
        if (lane != 0) return;
        y[n] = Epilogue(p, bias, n, s0);
        if (M > 1) y[p.N + n] = Epilogue(p, bias, n, s1);
        if (M > 2) y[2 * p.N + n] = Epilogue(p, bias, n, s2);
        if (M > 3) y[3 * p.N + n] = Epilogue(p, bias, n, s3);
    }
}
