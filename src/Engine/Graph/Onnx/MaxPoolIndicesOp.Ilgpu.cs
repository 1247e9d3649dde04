using GpuAnomaly.Kernels.Pool;

namespace GpuAnomaly.Engine;

public sealed partial class MaxPoolIndicesOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var x = inputs[0].Shape.Dims.ToArray();
        var y = output.Shape.Dims.ToArray();
        if (kernel.Length > PoolNdParams.MaxSpatial) return false;
        var p = PoolNdParams.Create(true, checked(x[0] * x[1]), x[2..], y[2..], kernel, strides, dilations, padBegin, padEnd, false);
        device.MaxPoolIndicesKernels.Forward(p, StorageOrder, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}
