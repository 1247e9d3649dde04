using GpuAnomaly.Kernels.Elementwise;
using GpuAnomaly.Kernels.Layout;

namespace GpuAnomaly.Engine;

// ArgMax / ArgMin, TopK, GatherElements and Where on ILGPU devices (AxisGpu, GatherElementsGpu, WhereGpu).

public sealed partial class ArgExtremeOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var (outer, n, inner) = NdIndex.Split(inputs[0].Shape.Dims.ToArray(), Axis);
        device.AxisKernels.ArgExtreme(Max, SelectLast, outer, n, inner, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}

public sealed partial class TopKOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var (outer, n, inner) = NdIndex.Split(inputs[0].Shape.Dims.ToArray(), Axis);
        device.AxisKernels.TopK(K, Largest, Indices, outer, n, inner, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}

public sealed partial class GatherElementsOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var xd = inputs[0].Shape.Dims.ToArray();
        var layout = GatherElementsLayout.Create(inputs[1].Shape.Dims.ToArray(), xd, Axis);
        if (layout is null) return false;
        device.GatherElementsKernels.Gather(layout.Value, inputs[0].View<float>(), inputs[1].View<float>(), output.View<float>(),
            $"gather_elements over axis {Axis} of [{string.Join(", ", xd)}]");
        return true;
    }
}

public sealed partial class WhereOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var yd = output.Shape.Dims.ToArray();
        long[] S(int k) => NdIndex.BroadcastStrides(inputs[k].Shape.Dims.ToArray(), yd);
        var layout = WhereLayout.Create(yd, S(0), S(1), S(2));
        if (layout is null) return false;
        device.WhereKernels.Where(layout.Value, inputs[0].View<float>(), inputs[1].View<float>(), inputs[2].View<float>(), output.View<float>());
        return true;
    }
}
