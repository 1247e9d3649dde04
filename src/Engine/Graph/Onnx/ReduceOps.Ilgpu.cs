using GpuAnomaly.Kernels.Elementwise;
using GpuAnomaly.Kernels.Reduce;

namespace GpuAnomaly.Engine;

// Reductions, softmax and matmul on ILGPU devices (ReduceGpu, MatMulGpu).

public sealed partial class ReduceOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var dims = inputs[0].Shape.Dims.ToArray();
        var reduced = new bool[dims.Length];
        foreach (int a in Axes) reduced[a] = true;
        var layout = ReduceLayout.Create((int)Function, dims, reduced);
        if (layout is null) return false;
        device.ReduceKernels.Reduce(layout.Value, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}

public sealed partial class SoftmaxAxisOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var dims = inputs[0].Shape.Dims.ToArray();
        long outer = 1, inner = 1;
        for (int i = 0; i < Axis; i++) outer *= dims[i];
        for (int i = Axis + 1; i < dims.Length; i++) inner *= dims[i];
        int d = dims.Length == 0 ? 1 : dims[Axis];
        device.ReduceKernels.Softmax(checked((int)outer), d, checked((int)inner), Log, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}

public sealed partial class MatMulOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        int[] a = inputs[0].Shape.Dims.ToArray(), b = inputs[1].Shape.Dims.ToArray(), y = output.Shape.Dims.ToArray();
        var batch = y[..^2];
        if (batch.Length > BroadcastLayout.MaxRank) return false;
        // Batch strides in matrices: a's batch axes are a[..^2], row-major.
        var layout = BroadcastLayout.Create(batch, NdIndex.BroadcastStrides(a[..^2], batch), NdIndex.BroadcastStrides(b[..^2], batch));
        device.MatMulKernels.Forward(a[^2], a[^1], b[^1], checked((int)NdIndex.Elements(batch)), layout,
            inputs[0].View<float>(), inputs[1].View<float>(), output.View<float>());
        return true;
    }
}
