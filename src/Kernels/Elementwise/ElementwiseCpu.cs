using GpuAnomaly.Kernels.Cpu;
using System.Numerics;
using System.Numerics.Tensors;

namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>
/// Elementwise ops for the `cpu` device: SIMD over contiguous chunks, chunks spread over the
/// cores above a size threshold. In-place use (y the same span as x, a or b) is allowed;
/// partially overlapping spans are not.
/// </summary>
public static unsafe class ElementwiseCpu
{
    /// <summary>Below this many elements (1 MiB of floats) one core is faster than waking the pool.</summary>
    private const int ParallelMinElements = 1 << 18;
    /// <summary>Chunks are a multiple of this many floats, so every chunk starts on a cache line as the whole tensor does.</summary>
    private const int ChunkAlign = 16;

    private enum Op { LeakyRelu, Relu, Add }

    /// <summary>y = x for x &gt;= 0, slope * x otherwise (PyTorch's LeakyReLU).</summary>
    public static void LeakyRelu(ReadOnlySpan<float> x, float slope, Span<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"leaky_relu: input has {x.Length} elements, output {y.Length}");
        fixed (float* px = x, py = y) Run(Op.LeakyRelu, px, null, slope, py, x.Length);
    }

    public static void Relu(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"relu: input has {x.Length} elements, output {y.Length}");
        fixed (float* px = x, py = y) Run(Op.Relu, px, null, 0f, py, x.Length);
    }

    /// <summary>y = a + b, same lengths, no broadcasting.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        if (a.Length != b.Length || a.Length != y.Length)
            throw new ArgumentException($"add: a has {a.Length} elements, b {b.Length}, output {y.Length} (no broadcasting)");
        fixed (float* pa = a, pb = b, py = y) Run(Op.Add, pa, pb, 0f, py, a.Length);
    }

    private static void Run(Op op, float* a, float* b, float slope, float* y, int n)
    {
        int threads = CpuParallel.Threads;
        if (n < ParallelMinElements || threads == 1)
        {
            Chunk(op, a, b, slope, y, n);
            return;
        }
        int chunks = threads * 2;
        int chunk = (n / chunks + ChunkAlign - 1) / ChunkAlign * ChunkAlign;
        chunks = (n + chunk - 1) / chunk;
        CpuParallel.For(0, chunks, i =>
        {
            int start = i * chunk, count = Math.Min(chunk, n - start);
            Chunk(op, a + start, b == null ? null : b + start, slope, y + start, count);
        });
    }

    private static void Chunk(Op op, float* a, float* b, float slope, float* y, int n)
    {
        var src = new ReadOnlySpan<float>(a, n);
        var dst = new Span<float>(y, n);
        switch (op)
        {
            case Op.Relu: TensorPrimitives.Max(src, 0f, dst); break;
            case Op.Add: TensorPrimitives.Add(src, new ReadOnlySpan<float>(b, n), dst); break;
            default: LeakyReluChunk(a, slope, y, n); break;
        }
    }

    /// <summary>TensorPrimitives has no LeakyReLU: select(x &gt;= 0, x, slope * x), one vector at a time.</summary>
    private static void LeakyReluChunk(float* x, float slope, float* y, int n)
    {
        var vSlope = new Vector<float>(slope);
        int i = 0;
        for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
        {
            var v = Vector.Load(x + i);
            Vector.ConditionalSelect(Vector.GreaterThanOrEqual(v, Vector<float>.Zero), v, v * vSlope).Store(y + i);
        }
        for (; i < n; i++) y[i] = x[i] >= 0 ? x[i] : slope * x[i];
    }
}
