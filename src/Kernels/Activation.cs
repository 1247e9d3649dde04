namespace GpuAnomaly.Kernels;

/// <summary>Activation fused into a kernel's epilogue (applied after the bias).</summary>
public enum Activation
{
    None = 0,
    Relu = 1,
    /// <summary>y = x for x &gt;= 0, slope * x otherwise (PyTorch's LeakyReLU).</summary>
    LeakyRelu = 2,
}
