using GpuAnomaly.Kernels.Gemm;

namespace GpuAnomaly.Engine;

public sealed partial class EinsumOp
{
    /// <summary>One or two operands on EinsumGpu (the letters and strides of <see cref="Compute{T}"/>); more operands have no kernel.</summary>
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var dims = inputs.Select(t => t.Shape.Dims.ToArray()).ToArray();
        var (letters, sizes) = Letters(dims);
        var layout = EinsumLayout.Create(sizes, _output.Length, LetterStrides(letters, dims));
        if (layout is null) return false;
        var a = inputs[0].View<float>();
        device.EinsumKernels.Forward(layout.Value, a, inputs.Count > 1 ? inputs[1].View<float>() : a, output.View<float>());
        return true;
    }
}
