using GpuAnomaly.Kernels.Layout;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Engine;

// The layout ops on ILGPU devices: each op is one IndexMap (Concat one per input) run by IndexMapGpu. An op whose map
// needs more than IndexMap.MaxRank axes of size > 1 has no kernel (OpNotOnDeviceException).

/// <summary>Builds the maps of the layout ops and runs them.</summary>
internal static class LayoutMaps
{
    public static bool Run(IlgpuDevice device, IReadOnlyList<MapAxis> axes, Tensor x, Tensor y, long dstBase = 0,
        OutsideMode mode = OutsideMode.Constant, float value = 0, int tableAxis = -1, ArrayView<int> table = default)
    {
        if (axes.Any(a => a.Dim == 0)) return true;
        var map = IndexMaps.Create(axes, 0, dstBase, tableAxis, mode, value);
        if (map is null) return false;
        device.IndexMapKernels.Copy(map.Value, x.View<float>(), table, y.View<float>());
        return true;
    }

    public static int[] Dims(Tensor t) => t.Shape.Dims.ToArray();
}

public sealed partial class TransposeOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var xd = LayoutMaps.Dims(inputs[0]);
        var sx = IndexMaps.Strides(xd);
        var sy = IndexMaps.Strides(LayoutMaps.Dims(output));
        var axes = Perm.Select((p, i) => new MapAxis(xd[p], 0, 1, xd[p], sx[p], sy[i])).ToArray();
        return LayoutMaps.Run(device, axes, inputs[0], output);
    }
}

public sealed partial class SliceOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var xd = LayoutMaps.Dims(inputs[0]);
        var sx = IndexMaps.Strides(xd);
        var sy = IndexMaps.Strides(Lengths);
        var axes = xd.Select((n, i) => new MapAxis(Lengths[i], Starts[i], Steps[i], n, sx[i], sy[i])).ToArray();
        return LayoutMaps.Run(device, axes, inputs[0], output);
    }
}

public sealed partial class PadOp
{
    /// <summary>The map of a pad: source coordinate = output coordinate - begin; <paramref name="mode"/> reads outside x.</summary>
    public static MapAxis[] PadAxes(int[] xd, int[] yd, IReadOnlyList<long> begin)
    {
        var sx = IndexMaps.Strides(xd);
        var sy = IndexMaps.Strides(yd);
        return yd.Select((n, i) => new MapAxis(n, -begin[i], 1, xd[i], sx[i], sy[i])).ToArray();
    }

    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output) =>
        LayoutMaps.Run(device, PadAxes(LayoutMaps.Dims(inputs[0]), LayoutMaps.Dims(output), Begin), inputs[0], output,
            mode: Mode switch
            {
                PadMode.Edge => OutsideMode.Edge,
                PadMode.Reflect => OutsideMode.Reflect,
                PadMode.Wrap => OutsideMode.Wrap,
                _ => OutsideMode.Constant,
            }, value: Value);
}

public sealed partial class ConcatOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var yd = LayoutMaps.Dims(output);
        if (yd.Length > IndexMap.MaxRank && yd.Count(d => d != 1) > IndexMap.MaxRank) return false;
        var sy = IndexMaps.Strides(yd);
        long at = 0;
        foreach (var x in inputs)
        {
            var xd = LayoutMaps.Dims(x);
            var sx = IndexMaps.Strides(xd);
            var axes = xd.Select((n, i) => new MapAxis(n, 0, 1, n, sx[i], sy[i])).ToArray();
            if (!LayoutMaps.Run(device, axes, x, output, dstBase: at * sy[Axis])) return false;
            at += xd[Axis];
        }
        return true;
    }
}

public sealed partial class GatherOp
{
    private readonly Lock _tableLock = new();
    private IlgpuDevice? _tableDevice;
    private MemoryBuffer1D<int, Stride1D.Dense>? _table;

    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var xd = LayoutMaps.Dims(inputs[0]);
        var sx = IndexMaps.Strides(xd);
        // Iteration dims: x's with the gather axis replaced by the (flattened) indices, which is y's layout.
        var it = xd.ToArray();
        it[Axis] = Indices.Count;
        var sy = IndexMaps.Strides(it);
        var axes = it.Select((n, i) => new MapAxis(n, 0, 1, xd[i], sx[i], sy[i])).ToArray();
        if (Indices.Count == 0) return true;
        return LayoutMaps.Run(device, axes, inputs[0], output, tableAxis: Axis, table: Table(device));
    }

    /// <summary>The indices on the device, uploaded once per device (the op keeps the last device's copy).</summary>
    private ArrayView<int> Table(IlgpuDevice device)
    {
        lock (_tableLock)
        {
            if (_tableDevice != device || _table is null)
            {
                _table?.Dispose();
                _table = device.Accelerator.Allocate1D(Indices.Select(i => checked((int)i)).ToArray());
                _tableDevice = device;
            }
            return _table.View;
        }
    }
}

public sealed partial class ExpandOp
{
    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var xd = LayoutMaps.Dims(inputs[0]);
        var yd = LayoutMaps.Dims(output);
        var sx = IndexMaps.Strides(xd);
        var sy = IndexMaps.Strides(yd);
        int off = yd.Length - xd.Length;
        var axes = yd.Select((n, i) =>
        {
            int j = i - off;
            bool repeated = j < 0 || xd[j] == 1;
            return new MapAxis(n, 0, repeated ? 0 : 1, repeated ? 1 : xd[j], repeated ? 0 : sx[j], sy[i]);
        }).ToArray();
        return LayoutMaps.Run(device, axes, inputs[0], output);
    }
}
