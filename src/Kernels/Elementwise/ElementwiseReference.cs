namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>Float64 host references of the elementwise ops (same length in and out, no broadcasting).</summary>
public static class ElementwiseReference
{
    public static void LeakyRelu(ReadOnlySpan<float> x, float slope, Span<double> y) => throw new NotImplementedException();
    public static void Relu(ReadOnlySpan<float> x, Span<double> y) => throw new NotImplementedException();
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> y) => throw new NotImplementedException();
}
