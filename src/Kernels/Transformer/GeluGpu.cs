using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>GELU (exact erf form) on an ILGPU accelerator: one thread per element, implicitly grouped. y may be x.</summary>
public sealed class GeluGpu
{
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _kernel;

    public GeluGpu(Accelerator accelerator) =>
        _kernel = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(Kernel);

    /// <summary>Queues y = gelu(x) on the default stream; does not synchronize.</summary>
    public void Forward(ArrayView<float> x, ArrayView<float> y)
    {
        if (x.Length != y.Length || x.Length > int.MaxValue)
            throw new ArgumentException($"gelu: input has {x.Length} elements, output {y.Length}");
        if (x.Length > 0) _kernel((int)x.Length, x, y);
    }

    private static void Kernel(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = Gelu.Apply(x[i]);
}
