using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>ArgMax / ArgMin, TopK, GatherElements: the ops whose outputs (or inputs) are indices (OnnxImporter.Indices.cs).</summary>
public static partial class OnnxImporter
{
    private static void AddIndexOps(Dictionary<string, Action<C, OnnxNode>> e)
    {
        foreach (var (name, max) in new[] { ("ArgMax", true), ("ArgMin", false) })
            e[name] = (c, n) =>
            {
                var x = c.In(n, 0);
                int axis = NdIndex.Axis(n.GetInt("axis", 0), x.Shape.Rank);
                c.CheckIndexRange(n, x.Shape[axis]);
                c.Emit(n, new ArgExtremeOp(max, axis, n.GetInt("keepdims", 1) != 0, n.GetInt("select_last_index", 0) != 0), [x], OnnxDataType.Int64, index: true);
            };
        e["TopK"] = (c, n) =>
        {
            var x = c.In(n, 0);
            int axis = NdIndex.Axis(n.GetInt("axis", -1), x.Shape.Rank);
            long k = c.Opset >= 10 ? c.Const(n, 1).Longs()[0] : n.GetInt("k");
            if (k < 0 || k > x.Shape[axis]) throw c.Error(n, $"TopK k = {k} for axis {axis} of {x.Shape}");
            bool largest = n.GetInt("largest", 1) != 0;
            // sorted = 0 leaves the order open; the sorted order is one of the allowed ones.
            if (n.Outputs[0] != "") c.Emit(n, new TopKOp(axis, (int)k, largest, indices: false), [x], x.Type);
            if (n.Outputs.Count > 1 && n.Outputs[1] != "")
            {
                c.CheckIndexRange(n, x.Shape[axis]);
                c.Emit(n, new TopKOp(axis, (int)k, largest, indices: true), [x], OnnxDataType.Int64, 1, index: true);
            }
        };
        // Where folds when everything is known (OnnxImporter.Folding.cs); a runtime branch runs on WhereOp.
        var foldWhere = e["Where"];
        e["Where"] = (c, n) =>
        {
            if (Enumerable.Range(0, 3).All(i => c.In(n, i).IsConst)) foldWhere(c, n);
            else c.Emit(n, new WhereOp(), [c.In(n, 0), c.In(n, 1), c.In(n, 2)], c.In(n, 1).Type);
        };
        e["GatherElements"] = (c, n) =>
        {
            var x = c.In(n, 0);
            var idx = c.In(n, 1);
            int axis = NdIndex.Axis(n.GetInt("axis", 0), x.Shape.Rank);
            // Indices travel as float32: known ones are checked here, runtime ones are runtime indices (range checked).
            if (idx.Const is { } k && k.Data.Any(v => v < -x.Shape[axis] || v >= x.Shape[axis]))
                throw c.Error(n, $"GatherElements index out of range for axis {axis} of {x.Shape}");
            c.Emit(n, new GatherElementsOp(axis), [x, idx], x.Type);
        };
    }
}
