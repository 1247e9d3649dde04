namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>Float64 host references of the elementwise ops (same length in and out, no broadcasting).</summary>
public static class ElementwiseReference
{
    /// <summary>y = x for x &gt;= 0, slope * x otherwise (PyTorch's LeakyReLU).</summary>
    public static void LeakyRelu(ReadOnlySpan<float> x, float slope, Span<double> y)
    {
        CheckLengths("leaky_relu reference", x.Length, y.Length);
        for (int i = 0; i < x.Length; i++) y[i] = x[i] >= 0 ? x[i] : (double)slope * x[i];
    }

    public static void Relu(ReadOnlySpan<float> x, Span<double> y)
    {
        CheckLengths("relu reference", x.Length, y.Length);
        for (int i = 0; i < x.Length; i++) y[i] = Math.Max(x[i], 0.0); // NaN propagates, as in PyTorch
    }

    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> y)
    {
        if (a.Length != b.Length || a.Length != y.Length)
            throw new ArgumentException($"add reference: a has {a.Length} elements, b {b.Length}, output {y.Length}");
        for (int i = 0; i < a.Length; i++) y[i] = (double)a[i] + b[i];
    }

    private static void CheckLengths(string op, int x, int y)
    {
        if (x != y) throw new ArgumentException($"{op}: input has {x} elements, output {y}");
    }
}
