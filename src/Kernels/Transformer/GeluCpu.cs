using GpuAnomaly.Kernels.Cpu;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>GELU (exact erf form) for the `cpu` device: SIMD over the tensor, multi-threaded when large. y may be x.</summary>
public static unsafe class GeluCpu
{
    private const int ParallelMinElements = 1 << 16;

    /// <summary>Tests set this to exercise the Vector&lt;T&gt; path on an AVX-512 machine.</summary>
    internal static bool ForceVector256;

    internal static bool Use512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported && !ForceVector256;

    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != y.Length)
            throw new ArgumentException($"gelu: input has {x.Length} elements, output {y.Length}");
        fixed (float* px = x, py = y)
        {
            if (x.Length < ParallelMinElements) Range(px, py, 0, x.Length);
            else
            {
                float* cx = px, cy = py;
                int n = x.Length, chunks = CpuParallel.Threads * 4;
                CpuParallel.For(0, chunks, i =>
                {
                    // Chunk borders on whole vectors of either width (16 floats) so that only the last chunk has a tail.
                    const int v = 16;
                    int start = (int)((long)n / v * i / chunks) * v, end = i == chunks - 1 ? n : (int)((long)n / v * (i + 1) / chunks) * v;
                    Range(cx, cy, start, end);
                });
            }
        }
    }

    // Hot loop: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    /// <summary>y[i] = gelu(x[i]) for i in [start, end); the tail goes through one masked or padded vector (same formula as the body).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Range(float* x, float* y, int start, int end)
    {
        int i = start;
        if (Use512)
        {
            for (; i <= end - 16; i += 16) Gelu.Apply(Vector512.Load(x + i)).Store(y + i);
            if (i == end) return;
            // Masked lanes are neither read nor written (no fault past the end of the tensor).
            var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(end - i)).AsSingle();
            Avx512F.MaskStore(y + i, mask, Gelu.Apply(Avx512F.MaskLoad(x + i, mask, Vector512<float>.Zero)));
            return;
        }
        for (; i <= end - Vector<float>.Count; i += Vector<float>.Count)
            Gelu.Apply(Vector.Load(x + i)).Store(y + i);
        if (i < end) Tail(x + i, y + i, end - i);
    }

    internal static void Tail(float* x, float* y, int n)
    {
        float* buf = stackalloc float[Vector<float>.Count];
        for (int j = 0; j < Vector<float>.Count; j++) buf[j] = j < n ? x[j] : 0f;
        Gelu.Apply(Vector.Load(buf)).Store(buf);
        for (int j = 0; j < n; j++) y[j] = buf[j];
    }
}
