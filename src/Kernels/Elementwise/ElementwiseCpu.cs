namespace GpuAnomaly.Kernels.Elementwise;

/// <summary>Elementwise ops for the `cpu` device. In-place use (y aliasing x or a) is allowed.</summary>
public static class ElementwiseCpu
{
    public static void LeakyRelu(ReadOnlySpan<float> x, float slope, Span<float> y) => throw new NotImplementedException();
    public static void Relu(ReadOnlySpan<float> x, Span<float> y) => throw new NotImplementedException();
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) => throw new NotImplementedException();
}
