using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Memory;

/// <summary>
/// Greedy k-center coreset on an ILGPU accelerator (see <see cref="CoresetParams"/>). A tiled GEMM projects the
/// features; then each iteration is two launches on the default stream: <see cref="UpdateKernel"/> (every point's
/// min distance to the newest pick, one (max, index) partial per group) and <see cref="ReduceKernel"/> (one group:
/// the farthest point, written to the pick scalar the next update reads). The host never waits between
/// iterations. Scratch (projected features, partials, pick) is allocated per call and freed after the queue.
/// </summary>
public sealed class CoresetGpu
{
    /// <summary>Threads per group for the update and reduce kernels (a power of two: tree reductions).</summary>
    public const int Threads = 256;
    /// <summary>The most update groups: each thread then walks a strided slice of the points.</summary>
    public const int MaxGroups = 1024;
    /// <summary>GEMM tile edge (Tile x Tile threads per group, two Tile x Tile shared tiles).</summary>
    public const int Tile = 16;

    private readonly Accelerator _accelerator;
    private readonly Action<KernelConfig, int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> _gemm;
    private readonly Action<KernelConfig, CoresetParams, int, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>> _update;
    private readonly Action<KernelConfig, int, ArrayView<float>, ArrayView<int>, ArrayView<int>> _reduce;

    public CoresetGpu(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _gemm = accelerator.LoadStreamKernel<int, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>(GemmKernel);
        _update = accelerator.LoadStreamKernel<CoresetParams, int, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>>(UpdateKernel);
        _reduce = accelerator.LoadStreamKernel<int, ArrayView<float>, ArrayView<int>, ArrayView<int>>(ReduceKernel);
    }

    /// <summary>features [N, D], projection [D, Projected] (empty when Projected = 0), selected [Count], minDistances [N].</summary>
    public void Forward(in CoresetParams p, ArrayView<float> features, ArrayView<float> projection, ArrayView<int> selected, ArrayView<float> minDistances)
    {
        p.CheckLengths(features.Length, projection.Length, selected.Length, minDistances.Length);
        int threads = Threads;
        while (threads > _accelerator.MaxNumThreadsPerGroup) threads /= 2;
        int groups = Math.Min(MaxGroups, (p.N + threads - 1) / threads);
        using var partMax = _accelerator.Allocate1D<float>(groups);
        using var partIdx = _accelerator.Allocate1D<int>(groups);
        using var pick = _accelerator.Allocate1D<int>(1);
        MemoryBuffer1D<float, Stride1D.Dense>? projected = null;
        try
        {
            var y = features;
            if (p.Projected > 0)
            {
                projected = _accelerator.Allocate1D<float>((long)p.N * p.Projected);
                y = projected.View;
                var grid = new Index3D((p.Projected + Tile - 1) / Tile, (p.N + Tile - 1) / Tile, 1);
                _gemm(new KernelConfig(grid, new Index3D(Tile, Tile, 1)), p.N, p.Projected, p.D, features, projection, y);
            }
            var update = new KernelConfig(new Index3D(groups, 1, 1), new Index3D(threads, 1, 1));
            var reduce = new KernelConfig(new Index3D(1, 1, 1), new Index3D(threads, 1, 1));
            for (int t = 0; t < p.Count; t++)
            {
                _update(update, p, t, y, minDistances, selected, pick.View, partMax.View, partIdx.View);
                if (t < p.Count - 1) _reduce(reduce, groups, partMax.View, partIdx.View, pick.View);
            }
            // The scratch is freed below: wait for the queued iterations that still read it.
            _accelerator.DefaultStream.Synchronize();
        }
        finally { projected?.Dispose(); }
    }

    /// <summary>c [m, n] = a [m, k] b [k, n], row-major; a Tile x Tile output block per group, k in Tile steps through shared tiles.</summary>
    private static void GemmKernel(int m, int n, int k, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        var sa = SharedMemory.Allocate2D<float, Stride2D.DenseX>(new Index2D(Tile, Tile), new Stride2D.DenseX(Tile));
        var sb = SharedMemory.Allocate2D<float, Stride2D.DenseX>(new Index2D(Tile, Tile), new Stride2D.DenseX(Tile));
        int tx = Group.IdxX, ty = Group.IdxY;
        int col = Grid.IdxX * Tile + tx, row = Grid.IdxY * Tile + ty;
        float s = 0f;
        for (int k0 = 0; k0 < k; k0 += Tile)
        {
            sa[ty, tx] = row < m && k0 + tx < k ? a[row * k + k0 + tx] : 0f;
            sb[ty, tx] = col < n && k0 + ty < k ? b[(k0 + ty) * n + col] : 0f;
            Group.Barrier();
            for (int j = 0; j < Tile; j += 4)
                s += sa[ty, j] * sb[j, tx] + sa[ty, j + 1] * sb[j + 1, tx] + sa[ty, j + 2] * sb[j + 2, tx] + sa[ty, j + 3] * sb[j + 3, tx];
            Group.Barrier();
        }
        if (row < m && col < n) c[row * n + col] = s;
    }

    /// <summary>
    /// Iteration t: the pick is Start (t = 0) or the scalar the last reduce wrote; group 0 records it as selected[t].
    /// Each thread walks points tid, tid + stride, ... in increasing order (strict > keeps the lower index), then a
    /// shared-memory tree gives the group's (max, lowest index of the max).
    /// </summary>
    private static void UpdateKernel(CoresetParams p, int t, ArrayView<float> y, ArrayView<float> min, ArrayView<int> selected,
        ArrayView<int> pick, ArrayView<float> partMax, ArrayView<int> partIdx)
    {
        var sMax = SharedMemory.Allocate<float>(Threads);
        var sIdx = SharedMemory.Allocate<int>(Threads);
        int tid = Group.IdxX, threads = Group.DimX, dims = p.Dims;
        int q = t == 0 ? p.Start : pick[0];
        if (Grid.IdxX == 0 && tid == 0) selected[t] = q;
        int qBase = q * dims;
        float far = float.NegativeInfinity;
        int farIdx = int.MaxValue;
        int stride = Grid.DimX * threads;
        for (int i = Grid.IdxX * threads + tid; i < p.N; i += stride)
        {
            int b = i * dims, c = 0;
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            for (; c + 3 < dims; c += 4)
            {
                float e0 = y[b + c] - y[qBase + c], e1 = y[b + c + 1] - y[qBase + c + 1];
                float e2 = y[b + c + 2] - y[qBase + c + 2], e3 = y[b + c + 3] - y[qBase + c + 3];
                s0 += e0 * e0; s1 += e1 * e1; s2 += e2 * e2; s3 += e3 * e3;
            }
            for (; c < dims; c++) { float e = y[b + c] - y[qBase + c]; s0 += e * e; }
            float s = (s0 + s1) + (s2 + s3);
            float m = t == 0 || s < min[i] ? s : min[i];
            min[i] = m;
            if (m > far) { far = m; farIdx = i; }
        }
        sMax[tid] = far;
        sIdx[tid] = farIdx;
        Group.Barrier();
        Tree(sMax, sIdx, tid, threads);
        if (tid == 0) { partMax[Grid.IdxX] = sMax[0]; partIdx[Grid.IdxX] = sIdx[0]; }
    }

    /// <summary>One group: the farthest of the groups' partials (ties by the lower index) becomes the next pick.</summary>
    private static void ReduceKernel(int groups, ArrayView<float> partMax, ArrayView<int> partIdx, ArrayView<int> pick)
    {
        var sMax = SharedMemory.Allocate<float>(Threads);
        var sIdx = SharedMemory.Allocate<int>(Threads);
        int tid = Group.IdxX, threads = Group.DimX;
        float far = float.NegativeInfinity;
        int farIdx = int.MaxValue;
        for (int g = tid; g < groups; g += threads)
            if (Better(partMax[g], partIdx[g], far, farIdx)) { far = partMax[g]; farIdx = partIdx[g]; }
        sMax[tid] = far;
        sIdx[tid] = farIdx;
        Group.Barrier();
        Tree(sMax, sIdx, tid, threads);
        // No candidate above -inf (all NaN) falls back to point 0, as the reference does.
        if (tid == 0) pick[0] = sIdx[0] == int.MaxValue ? 0 : sIdx[0];
    }

    private static void Tree(ArrayView<float> sMax, ArrayView<int> sIdx, int tid, int threads)
    {
        for (int h = threads / 2; h > 0; h /= 2)
        {
            if (tid < h && Better(sMax[tid + h], sIdx[tid + h], sMax[tid], sIdx[tid]))
            {
                sMax[tid] = sMax[tid + h];
                sIdx[tid] = sIdx[tid + h];
            }
            Group.Barrier();
        }
    }

    private static bool Better(float v, int i, float w, int j) => v > w || (v == w && i < j);
}
