using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// Tile, DepthToSpace / SpaceToDepth (reshape + transpose), Trilu, CumSum, Hardmax, Shrink, IsNaN / IsInf (fold
/// only: BOOL), Einsum, InstanceNormalization (its definition on the generic ops).
/// </summary>
public static partial class OnnxImporter
{
    private static void AddTensorOps(Dictionary<string, Action<C, OnnxNode>> e)
    {
        e["Tile"] = (c, n) =>
        {
            var x = c.In(n, 0);
            var reps = c.Const(n, 1).Longs().Select(r => checked((int)r)).ToArray();
            c.Emit(n, new TileOp(reps), [x], x.Type);
        };
        e["DepthToSpace"] = (c, n) =>
        {
            var x = c.In(n, 0);
            int b = (int)n.GetInt("blocksize");
            if (x.Shape.Rank != 4 || b < 1 || x.Shape[1] % (b * b) != 0) throw c.Error(n, $"DepthToSpace blocksize {b} of {x.Shape}");
            int nn = x.Shape[0], ch = x.Shape[1] / (b * b), h = x.Shape[2], w = x.Shape[3];
            bool crd = n.GetString("mode", "DCR") == "CRD";
            // DCR reads the channel as (block row, block column, channel); CRD as (channel, block row, block column).
            var split = crd ? new Shape(nn, ch, b, b, h, w) : new Shape(nn, b, b, ch, h, w);
            int[] perm = crd ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2];
            Rearrange(c, n, x, split, perm, new Shape(nn, ch, h * b, w * b));
        };
        e["SpaceToDepth"] = (c, n) =>
        {
            var x = c.In(n, 0);
            int b = (int)n.GetInt("blocksize");
            if (x.Shape.Rank != 4 || b < 1 || x.Shape[2] % b != 0 || x.Shape[3] % b != 0) throw c.Error(n, $"SpaceToDepth blocksize {b} of {x.Shape}");
            int nn = x.Shape[0], ch = x.Shape[1], h = x.Shape[2] / b, w = x.Shape[3] / b;
            Rearrange(c, n, x, new Shape(nn, ch, h, b, w, b), [0, 3, 5, 1, 2, 4], new Shape(nn, ch * b * b, h, w));
        };
        e["Trilu"] = (c, n) =>
        {
            var x = c.In(n, 0);
            long k = c.Has(n, 1) ? c.Const(n, 1).Longs()[0] : 0;
            c.Emit(n, new TriluOp(n.GetInt("upper", 1) != 0, k), [x], x.Type);
        };
        e["CumSum"] = (c, n) =>
        {
            var x = c.In(n, 0);
            int axis = NdIndex.Axis(c.Const(n, 1).Longs()[0], x.Shape.Rank);
            c.Emit(n, new CumSumOp(axis, n.GetInt("exclusive", 0) != 0, n.GetInt("reverse", 0) != 0), [x], x.Type);
        };
        e["Hardmax"] = (c, n) =>
        {
            var x = c.In(n, 0);
            int rank = x.Shape.Rank, axis = NdIndex.Axis(n.GetInt("axis", c.Opset >= 13 ? -1 : 1), Math.Max(rank, 1));
            if (c.Opset >= 13 || axis == rank - 1)
            {
                c.Emit(n, new HardmaxOp(axis), [x], x.Type);
                return;
            }
            // Before opset 13, as Softmax: over all the axes from `axis` on, as one flattened row.
            long outer = 1;
            for (int i = 0; i < axis; i++) outer *= x.Shape[i];
            var flat = c.EmitTo(n, n.Outputs[0] + ":2d", new ReshapeCopyOp(new Shape((int)outer, (int)(x.Shape.Elements / Math.Max(outer, 1)))), [x], x.Type);
            var h = c.EmitTo(n, n.Outputs[0] + ":hardmax", new HardmaxOp(1), [flat], x.Type);
            c.Emit(n, new ReshapeCopyOp(x.Shape), [h], x.Type);
        };
        e["Shrink"] = (c, n) =>
        {
            var x = c.In(n, 0);
            c.Emit(n, new ShrinkOp(n.GetFloat("lambd", 0.5f), n.GetFloat("bias", 0f)), [x], x.Type);
        };
        e["IsNaN"] = (c, n) => c.Emit(n, new FloatClassOp(nan: true), [c.In(n, 0)], OnnxDataType.Bool);
        e["IsInf"] = (c, n) => c.Emit(n, new FloatClassOp(false, n.GetInt("detect_negative", 1) != 0, n.GetInt("detect_positive", 1) != 0),
            [c.In(n, 0)], OnnxDataType.Bool);
        e["Einsum"] = (c, n) =>
        {
            var xs = Enumerable.Range(0, n.Inputs.Count).Where(i => c.Has(n, i)).Select(i => c.In(n, i)).ToArray();
            c.Emit(n, new EinsumOp(ExpandEllipsis(n.GetString("equation"), xs.Select(x => x.Shape.Rank).ToArray())), xs, xs[0].Type);
        };
        e["InstanceNormalization"] = InstanceNorm;
    }

    /// <summary>
    /// Einsum's "..." as letters of its own (unused ones, right-aligned across operands: the dims must then be equal,
    /// broadcasting a 1 is not supported), so EinsumOp sees explicit subscripts only.
    /// </summary>
    public static string ExpandEllipsis(string equation, int[] ranks)
    {
        var eq = equation.Replace(" ", "");
        if (!eq.Contains("...")) return eq;
        var parts = eq.Split("->");
        var ops = parts[0].Split(',');
        if (ops.Length != ranks.Length) throw new ArgumentException($"einsum '{equation}' has {ops.Length} operands for {ranks.Length} inputs");
        var free = Enumerable.Range('A', 26).Concat(Enumerable.Range('a', 26)).Select(i => (char)i).Where(ch => !eq.Contains(ch)).ToArray();
        var counts = ops.Select((o, k) => o.Contains("...") ? ranks[k] - (o.Length - 3) : 0).ToArray();
        if (counts.Any(v => v < 0)) throw new ArgumentException($"einsum '{equation}' has more subscripts than an operand's rank");
        int most = counts.Max();
        if (most > free.Length) throw new ArgumentException($"einsum '{equation}': too many ellipsis dims");
        string Letters(int count) => new(free[(most - count)..most]);
        var expanded = ops.Select((o, k) => o.Replace("...", Letters(counts[k]))).ToArray();
        string output = parts.Length == 2 ? parts[1].Replace("...", Letters(most))
            : Letters(most) + new string(string.Concat(ops).Replace("...", "").GroupBy(ch => ch).Where(g => g.Count() == 1).Select(g => g.Key).Order().ToArray());
        return string.Join(",", expanded) + "->" + output;
    }

    private static void Rearrange(C c, OnnxNode n, OnnxSym x, Shape split, int[] perm, Shape target)
    {
        string o = n.Outputs[0];
        var a = c.EmitTo(n, o + ":split", new ReshapeCopyOp(split), [x], x.Type);
        var t = c.EmitTo(n, o + ":perm", new TransposeOp(perm), [a], x.Type);
        c.Emit(n, new ReshapeCopyOp(target), [t], x.Type);
    }

    /// <summary>InstanceNormalization: per (batch, channel), (x - mean) / sqrt(var + epsilon) over the spatial axes, then scale and B per channel.</summary>
    private static void InstanceNorm(C c, OnnxNode n)
    {
        var x = c.In(n, 0);
        int rank = x.Shape.Rank;
        if (rank < 3) throw c.Error(n, $"InstanceNormalization of {x.Shape} (rank >= 3)");
        float eps = n.GetFloat("epsilon", 1e-5f);
        string o = n.Outputs[0];
        var axes = Enumerable.Range(2, rank - 2).ToArray();
        var perChannel = new Shape([x.Shape[1], .. Enumerable.Repeat(1, rank - 2)]);
        var scale = c.EmitTo(n, o + ":scale_c", new ReshapeCopyOp(perChannel), [c.In(n, 1)], x.Type);
        var bias = c.EmitTo(n, o + ":bias_c", new ReshapeCopyOp(perChannel), [c.In(n, 2)], x.Type);
        var mean = c.EmitTo(n, o + ":mean", new ReduceOp(ReduceKind.Mean, axes, true), [x], x.Type);
        var d = c.EmitTo(n, o + ":d", new BroadcastBinaryOp(BinaryKind.Sub), [x, mean], x.Type);
        var d2 = c.EmitTo(n, o + ":d2", new BroadcastBinaryOp(BinaryKind.Mul), [d, d], x.Type);
        var variance = c.EmitTo(n, o + ":var", new ReduceOp(ReduceKind.Mean, axes, true), [d2], x.Type);
        var ve = c.EmitTo(n, o + ":var_eps", new BroadcastBinaryOp(BinaryKind.Add), [variance, Scalar(x.Type, eps)], x.Type);
        var std = c.EmitTo(n, o + ":std", new UnaryMathOp(UnaryKind.Sqrt), [ve], x.Type);
        var normed = c.EmitTo(n, o + ":normed", new BroadcastBinaryOp(BinaryKind.Div), [d, std], x.Type);
        var scaled = c.EmitTo(n, o + ":scaled", new BroadcastBinaryOp(BinaryKind.Mul), [normed, scale], x.Type);
        c.Emit(n, new BroadcastBinaryOp(BinaryKind.Add), [scaled, bias], x.Type);
    }
}
