using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>
/// Elementwise kernels for an ILGPU accelerator. Implicitly grouped grid-stride loops: the
/// launch has a fixed number of threads that fills the device (a few waves per multiprocessor),
/// each thread walks the tensor with a stride of the whole grid, so every warp access is
/// coalesced and large tensors pay no per-element launch cost. In-place use (y the same view
/// as x, a or b) is allowed: each element is read and written by the same thread.
/// </summary>
public sealed class ElementwiseGpu
{
    private readonly Action<Index1D, int, int, ArrayView<float>, float, ArrayView<float>> _leakyRelu;
    private readonly Action<Index1D, int, int, ArrayView<float>, ArrayView<float>> _relu;
    private readonly Action<Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>> _add;
    private readonly Action<Index1D, int, int, ArrayView<Float4>, float, ArrayView<Float4>> _leakyRelu4;
    private readonly Action<Index1D, int, int, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>> _add4;
    private readonly int _gridThreads;

    public ElementwiseGpu(Accelerator accelerator)
    {
        _leakyRelu = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ArrayView<float>, float, ArrayView<float>>(LeakyReluKernel);
        _relu = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ArrayView<float>, ArrayView<float>>(ReluKernel);
        _add = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>(AddKernel);
        _leakyRelu4 = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ArrayView<Float4>, float, ArrayView<Float4>>(LeakyRelu4Kernel);
        _add4 = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ArrayView<Float4>, ArrayView<Float4>, ArrayView<Float4>>(Add4Kernel);
        // Enough resident threads to hide memory latency; more only adds scheduling.
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>y = x for x &gt;= 0, slope * x otherwise. Queued on the default stream; does not synchronize.</summary>
    public void LeakyRelu(ArrayView<float> x, float slope, ArrayView<float> y)
    {
        int n = CheckLengths("leaky_relu", x.Length, y.Length);
        if (n == 0) return;
        if (Vectorizable(n, x, y)) { int n4 = n / 4, t = Threads(n4); _leakyRelu4(t, n4, t, x.Cast<Float4>(), slope, y.Cast<Float4>()); }
        else { int t = Threads(n); _leakyRelu(t, n, t, x, slope, y); }
    }

    public void Relu(ArrayView<float> x, ArrayView<float> y)
    {
        int n = CheckLengths("relu", x.Length, y.Length);
        if (n > 0) { int t = Threads(n); _relu(t, n, t, x, y); }
    }

    /// <summary>y = a + b, same lengths, no broadcasting.</summary>
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        if (a.Length != b.Length || a.Length != y.Length)
            throw new ArgumentException($"add: a has {a.Length} elements, b {b.Length}, output {y.Length} (no broadcasting)");
        int n = CheckLengths("add", a.Length, y.Length);
        if (n == 0) return;
        if (Vectorizable(n, a, b) && Vectorizable(n, y, y)) { int n4 = n / 4, t = Threads(n4); _add4(t, n4, t, a.Cast<Float4>(), b.Cast<Float4>(), y.Cast<Float4>()); }
        else { int t = Threads(n); _add(t, n, t, a, b, y); }
    }

    private int Threads(int n) => Math.Min(n, _gridThreads);

    // 16-byte accesses need lengths in whole Float4s and views starting on a 16-byte boundary
    // (buffers are allocated aligned; IndexInBytes is a view's offset from its buffer's start).
    private static bool Vectorizable(int n, ArrayView<float> a, ArrayView<float> b) =>
        n % 4 == 0 && IndexInBytes(a) % 16 == 0 && IndexInBytes(b) % 16 == 0;

    // A constrained generic call reads the explicitly implemented property without boxing.
    private static long IndexInBytes<TView>(TView view) where TView : IContiguousArrayView => view.IndexInBytes;

    private static int CheckLengths(string op, long x, long y)
    {
        if (x != y) throw new ArgumentException($"{op}: input has {x} elements, output {y}");
        if (x > int.MaxValue) throw new ArgumentException($"{op}: {x} elements; tensors above 2^31 elements are not supported");
        return (int)x;
    }

    // stride = the number of threads launched. It is passed rather than read from Grid/Group:
    // an implicitly grouped launch rounds the grid up and masks the extra threads off, so
    // Grid.DimX * Group.DimX can exceed the threads that actually run and would skip elements.
    private static void LeakyReluKernel(Index1D index, int n, int stride, ArrayView<float> x, float slope, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            y[i] = v >= 0f ? v : slope * v;
        }
    }

    private static void ReluKernel(Index1D index, int n, int stride, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            // NaN propagates, as in PyTorch.
            y[i] = v > 0f || float.IsNaN(v) ? v : 0f;
        }
    }

    private static void LeakyRelu4Kernel(Index1D index, int n4, int stride, ArrayView<Float4> x, float slope, ArrayView<Float4> y)
    {
        for (int i = index; i < n4; i += stride)
        {
            Float4 v = x[i];
            y[i] = new Float4(v.X >= 0f ? v.X : slope * v.X, v.Y >= 0f ? v.Y : slope * v.Y,
                              v.Z >= 0f ? v.Z : slope * v.Z, v.W >= 0f ? v.W : slope * v.W);
        }
    }

    private static void Add4Kernel(Index1D index, int n4, int stride, ArrayView<Float4> a, ArrayView<Float4> b, ArrayView<Float4> y)
    {
        for (int i = index; i < n4; i += stride)
        {
            Float4 u = a[i], v = b[i];
            y[i] = new Float4(u.X + v.X, u.Y + v.Y, u.Z + v.Z, u.W + v.W);
        }
    }

    private static void AddKernel(Index1D index, int n, int stride, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        for (int i = index; i < n; i += stride) y[i] = a[i] + b[i];
    }
}
