using GpuAnomaly.Kernels.Layout;

namespace GpuAnomaly.Engine;

// Tile, Trilu, CumSum, Hardmax and Shrink on ILGPU devices.

public sealed partial class TileOp
{
    /// <summary>Tile is a copy whose source coordinate wraps: the output's axes read x's with OutsideMode.Wrap.</summary>
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var xd = LayoutMaps.Dims(inputs[0]);
        var yd = LayoutMaps.Dims(output);
        var sx = IndexMaps.Strides(xd);
        var sy = IndexMaps.Strides(yd);
        var axes = yd.Select((n, i) => new MapAxis(n, 0, 1, xd[i], sx[i], sy[i])).ToArray();
        return LayoutMaps.Run(device, axes, inputs[0], output, mode: OutsideMode.Wrap);
    }
}

public sealed partial class TriluOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var d = LayoutMaps.Dims(output);
        device.WhereKernels.Trilu(Upper, K, d[^2], d[^1], inputs[0].View<float>(), output.View<float>());
        return true;
    }
}

public sealed partial class CumSumOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var (outer, n, inner) = NdIndex.Split(inputs[0].Shape.Dims.ToArray(), Axis);
        device.AxisKernels.CumSum(exclusive, reverse, outer, n, inner, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}

public sealed partial class HardmaxOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var (outer, n, inner) = NdIndex.Split(inputs[0].Shape.Dims.ToArray(), Axis);
        device.AxisKernels.Hardmax(outer, n, inner, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}

public sealed partial class ShrinkOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        device.WhereKernels.Shrink(lambd, bias, inputs[0].View<float>(), output.View<float>());
        return true;
    }
}
