using GpuAnomaly.Kernels.Elementwise;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Gemm;

/// <summary>
/// numpy matmul on an ILGPU accelerator: y[t] = a[ia(t)] b[ib(t)] for every batch index t, a [M, K], b [K, N] row-major
/// (MatMul's layout; LinearGpu's GEMM takes the weight as [N, K], hence this kernel). Explicitly grouped: a group of
/// <see cref="Tile"/> x <see cref="Tile"/> threads computes one tile of y, K advancing a tile at a time through shared
/// copies of a and b (zero-padded past the edges, so every thread reaches every barrier). The batch axes are a
/// <see cref="BroadcastLayout"/> over the batch dims whose strides count matrices (0 on a broadcast axis); the grid's
/// z dimension strides over the batches.
/// </summary>
public sealed class MatMulGpu
{
    public const int Tile = 16;
    private const int MaxGridZ = 65535;
    private readonly Action<KernelConfig, int, int, int, int, BroadcastLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>> _gemm;

    public MatMulGpu(Accelerator accelerator)
    {
        if (accelerator.MaxNumThreadsPerGroup < Tile * Tile)
            throw new NotSupportedException($"matmul: the accelerator allows {accelerator.MaxNumThreadsPerGroup} threads per group, the tiled kernel needs {Tile * Tile}");
        _gemm = accelerator.LoadStreamKernel<int, int, int, int, BroadcastLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>>(GemmKernel);
    }

    /// <summary>Queues the batched product; <paramref name="batches"/> is the product of the layout's dims.</summary>
    public void Forward(int m, int k, int n, int batches, in BroadcastLayout batch, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        if (y.Length != (long)batches * m * n)
            throw new ArgumentException($"matmul: output of {y.Length} elements for {batches} x [{m}, {n}]");
        if (a.Length > int.MaxValue || b.Length > int.MaxValue || y.Length > int.MaxValue)
            throw new ArgumentException("matmul: operands above 2^31 elements are not supported");
        if (y.Length == 0) return;
        var grid = new Index3D((n + Tile - 1) / Tile, (m + Tile - 1) / Tile, Math.Min(batches, MaxGridZ));
        _gemm(new KernelConfig(grid, new Index3D(Tile, Tile, 1)), m, k, n, batches, batch, a, b, y);
    }

    private static void GemmKernel(int m, int k, int n, int batches, BroadcastLayout l, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        var sa = SharedMemory.Allocate<float>(Tile * Tile);
        var sb = SharedMemory.Allocate<float>(Tile * Tile);
        int tx = Group.IdxX, ty = Group.IdxY;
        int row = Grid.IdxY * Tile + ty, col = Grid.IdxX * Tile + tx;
        for (int t = Grid.IdxZ; t < batches; t += Grid.DimZ)
        {
            int r = t, ia = 0, ib = 0, c;
            c = r % l.D5; r /= l.D5; ia += c * l.A5; ib += c * l.B5;
            c = r % l.D4; r /= l.D4; ia += c * l.A4; ib += c * l.B4;
            c = r % l.D3; r /= l.D3; ia += c * l.A3; ib += c * l.B3;
            c = r % l.D2; r /= l.D2; ia += c * l.A2; ib += c * l.B2;
            c = r % l.D1; r /= l.D1; ia += c * l.A1; ib += c * l.B1;
            ia += r * l.A0; ib += r * l.B0;
            int baseA = ia * m * k, baseB = ib * k * n;
            float sum = 0f;
            for (int k0 = 0; k0 < k; k0 += Tile)
            {
                // Thread (tx, ty) loads a[row, k0 + tx] and b[k0 + ty, col]: consecutive tx read consecutive addresses.
                int ka = k0 + tx, kb = k0 + ty;
                sa[ty * Tile + tx] = row < m && ka < k ? a[baseA + row * k + ka] : 0f;
                sb[ty * Tile + tx] = kb < k && col < n ? b[baseB + kb * n + col] : 0f;
                Group.Barrier();
                for (int kk = 0; kk < Tile; kk++) sum += sa[ty * Tile + kk] * sb[kk * Tile + tx];
                Group.Barrier(); // the tiles are read before the next step overwrites them
            }
            if (row < m && col < n) y[(t * m + row) * n + col] = sum;
        }
    }
}
