using System.Runtime.InteropServices;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// nn.Linear weights in the layout <see cref="LinearCpu"/> computes from: W^T [K, Ldw], rows padded with zeros to
/// a multiple of 32 columns (the widest SGEMM micro-kernel), so the SGEMM reads whole column panels in place and
/// the small-M path streams contiguous rows. Made once by <see cref="LinearCpu.PackWeights"/> for constant weights.
/// Owns native, 64-byte aligned memory freed by Dispose (or the finalizer); it holds a copy of the weights.
/// </summary>
public sealed unsafe class LinearPackedWeights : IDisposable
{
    internal const int ColumnAlign = 32;
    private float* _data;

    internal LinearPackedWeights(int k, int n)
    {
        K = k;
        N = n;
        Ldw = (n + ColumnAlign - 1) / ColumnAlign * ColumnAlign;
        _data = (float*)NativeMemory.AlignedAlloc((nuint)((long)k * Ldw * sizeof(float)), 64);
        if (_data == null) throw new OutOfMemoryException($"linear: {(long)k * Ldw} floats of packed weights");
        GC.AddMemoryPressure((long)k * Ldw * sizeof(float));
    }

    /// <summary>in_features, out_features of the weights.</summary>
    public int K { get; }
    public int N { get; }
    /// <summary>Row stride of W^T in floats.</summary>
    internal int Ldw { get; }
    public bool IsDisposed => _data == null;

    internal float* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data == null, this);
            return _data;
        }
    }

    public bool Matches(in LinearParams p) => p.K == K && p.N == N;

    /// <summary>W [N, K] -> W^T [K, ldw], zero columns past N.</summary>
    internal static void Transpose(float* w, int k, int n, float* dst, int ldw)
    {
        // Blocks of 8 weight rows: each source cache line is used 8 times while it is hot.
        for (int n0 = 0; n0 < n; n0 += 8)
        {
            int n1 = Math.Min(n, n0 + 8);
            for (int kk = 0; kk < k; kk++)
            {
                float* d = dst + (long)kk * ldw;
                for (int j = n0; j < n1; j++) d[j] = w[(long)j * k + kk];
            }
        }
        for (int kk = 0; kk < k; kk++)
            new Span<float>(dst + (long)kk * ldw + n, ldw - n).Clear();
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_data == null) return;
        NativeMemory.AlignedFree(_data);
        GC.RemoveMemoryPressure((long)K * Ldw * sizeof(float));
        _data = null;
    }

    ~LinearPackedWeights() => Free();

    public override string ToString() => $"LinearPackedWeights([{N}, {K}])";
}
