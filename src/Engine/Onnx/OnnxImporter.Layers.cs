using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Pool;
using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>Entries of the ops with more attribute logic: slicing, padding, reductions, matmul / Gemm, Conv, pools, norms.</summary>
public static partial class OnnxImporter
{
    private static OnnxSym Known(HostTensor t) => new() { Const = t, Type = t.Type, Shape = t.Shape };

    private static void Slice(C c, OnnxNode n)
    {
        var x = c.In(n, 0);
        int rank = x.Shape.Rank;
        long[] starts, ends, axes, steps;
        if (c.Opset >= 10)
        {
            starts = c.Const(n, 1).Longs();
            ends = c.Const(n, 2).Longs();
            axes = c.Has(n, 3) ? c.Const(n, 3).Longs() : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            steps = c.Has(n, 4) ? c.Const(n, 4).Longs() : Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        else
        {
            starts = n.GetInts("starts").ToArray();
            ends = n.GetInts("ends").ToArray();
            axes = n.GetInts("axes", Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray()).ToArray();
            steps = Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        var (s, st, len) = SliceAxes(x.Shape, starts, ends, axes, steps);
        c.Emit(n, new SliceOp(s, st, len), [x], x.Type);
    }

    /// <summary>ONNX Slice's normalization: negative indices count from the end, out-of-range ones clamp, steps may be negative.</summary>
    public static (long[] Starts, long[] Steps, int[] Lengths) SliceAxes(Shape x, long[] starts, long[] ends, long[] axes, long[] steps)
    {
        int rank = x.Rank;
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
            throw new ArgumentException("starts, ends, axes and steps differ in length");
        var s = new long[rank];
        var st = Enumerable.Repeat(1L, rank).ToArray();
        var len = x.Dims.ToArray();
        var seen = new HashSet<int>();
        for (int k = 0; k < starts.Length; k++)
        {
            int a = NdIndex.Axis(axes[k], rank);
            if (!seen.Add(a)) throw new ArgumentException($"axis {a} appears twice");
            long d = x[a], step = steps[k];
            if (step == 0) throw new ArgumentException("a slice step is 0");
            long b = Math.Clamp(starts[k], -(1L << 40), 1L << 40), e = Math.Clamp(ends[k], -(1L << 40), 1L << 40);
            if (b < 0) b += d;
            if (e < 0) e += d;
            long count;
            if (step > 0)
            {
                b = Math.Clamp(b, 0, d);
                e = Math.Clamp(e, 0, d);
                count = e > b ? (e - b + step - 1) / step : 0;
            }
            else
            {
                b = Math.Clamp(b, -1, d - 1);
                e = Math.Clamp(e, -1, d - 1);
                count = b > e ? (b - e - step - 1) / -step : 0;
            }
            s[a] = count > 0 ? b : 0;
            st[a] = step;
            len[a] = (int)count;
        }
        return (s, st, len);
    }

    private static void Pad(C c, OnnxNode n)
    {
        var x = c.In(n, 0);
        string mode = n.GetString("mode", "constant");
        var padMode = mode switch
        {
            "constant" => PadMode.Constant, "edge" => PadMode.Edge, "reflect" => PadMode.Reflect,
            "wrap" when c.Opset >= 19 => PadMode.Wrap,
            _ => throw c.Error(n, $"Pad mode '{mode}' (constant, edge, reflect; wrap from opset 19)"),
        };
        long[] pads = c.Opset >= 11 ? c.Const(n, 1).Longs() : n.GetInts("pads").ToArray();
        float value = c.Opset >= 11 ? c.Has(n, 2) ? (float)c.Const(n, 2).Data[0] : 0f : n.GetFloat("value", 0f);
        int rank = x.Shape.Rank;
        var axes = c.Has(n, 3) ? c.Const(n, 3).Longs().Select(a => NdIndex.Axis(a, rank)).ToArray() : Enumerable.Range(0, rank).ToArray();
        if (pads.Length != 2 * axes.Length) throw c.Error(n, $"Pad has {pads.Length} pads for {axes.Length} axes");
        var begin = new long[rank];
        var end = new long[rank];
        for (int k = 0; k < axes.Length; k++)
        {
            begin[axes[k]] = pads[k];
            end[axes[k]] = pads[k + axes.Length];
        }
        c.Emit(n, new PadOp(begin, end, value, padMode), [x], x.Type);
    }

    private static void Softmax(C c, OnnxNode n, bool log)
    {
        var x = c.In(n, 0);
        int rank = x.Shape.Rank;
        int axis = NdIndex.Axis(n.GetInt("axis", c.Opset >= 13 ? -1 : 1), Math.Max(rank, 1));
        if (c.Opset >= 13 || axis == rank - 1)
        {
            c.Emit(n, new SoftmaxAxisOp(axis, log), [x], x.Type);
            return;
        }
        // Before opset 13 softmax normalizes over all the axes from `axis` on, as one flattened row.
        long outer = 1;
        for (int i = 0; i < axis; i++) outer *= x.Shape[i];
        var flat = c.EmitTo(n, n.Outputs[0] + ":2d", new ReshapeCopyOp(new Shape((int)outer, (int)(x.Shape.Elements / Math.Max(outer, 1)))), [x], x.Type);
        var sm = c.EmitTo(n, n.Outputs[0] + ":softmax", new SoftmaxAxisOp(1, log), [flat], x.Type);
        c.Emit(n, new ReshapeCopyOp(x.Shape), [sm], x.Type);
    }

    private static void Reduce(C c, OnnxNode n, ReduceKind kind)
    {
        var x = c.In(n, 0);
        int rank = x.Shape.Rank;
        bool axesInput = c.Opset >= 18 || (kind == ReduceKind.Sum && c.Opset >= 13);
        var axes = axesInput ? (c.Has(n, 1) ? c.Const(n, 1).Longs().Select(a => NdIndex.Axis(a, rank)).Distinct().ToArray() : null) : Axes(c, n, 99, "axes", rank);
        if (axes is null || axes.Length == 0)
        {
            if (n.GetInt("noop_with_empty_axes", 0) != 0)
            {
                Reshape(c, n, x.Shape);
                return;
            }
            axes = Enumerable.Range(0, rank).ToArray();
        }
        c.Emit(n, new ReduceOp(kind, axes, n.GetInt("keepdims", 1) != 0), [x], x.Type);
    }

    private static void GlobalPool(C c, OnnxNode n, ReduceKind kind)
    {
        var x = c.In(n, 0);
        c.Emit(n, new ReduceOp(kind, Enumerable.Range(2, x.Shape.Rank - 2).ToArray(), true), [x], x.Type);
    }

    private static HostTensor Transposed(HostTensor w)
    {
        var d = w.Dims;
        var y = new double[w.Data.Length];
        NdLayout.Transpose<double>(w.Data, d, [1, 0], y);
        return new HostTensor(w.Type, [d[1], d[0]], y);
    }

    private static void MatMul(C c, OnnxNode n)
    {
        OnnxSym a = c.In(n, 0), b = c.In(n, 1);
        if (b.Const is { } w && w.Shape.Rank == 2 && a.Shape.Rank >= 2 && !a.IsConst)
        {
            c.Emit(n, new LinearOp(), [a, Known(Transposed(w))], a.Type);
            return;
        }
        string o = n.Outputs[0];
        bool aVec = a.Shape.Rank == 1, bVec = b.Shape.Rank == 1;
        if (aVec) a = c.EmitTo(n, o + ":a2d", new ReshapeCopyOp(new Shape(1, a.Shape[0])), [a], a.Type);
        if (bVec) b = c.EmitTo(n, o + ":b2d", new ReshapeCopyOp(new Shape(b.Shape[0], 1)), [b], b.Type);
        if (!aVec && !bVec)
        {
            c.Emit(n, new MatMulOp(), [a, b], a.Type);
            return;
        }
        var y = c.EmitTo(n, o + ":mm", new MatMulOp(), [a, b], a.Type);
        var dims = y.Shape.Dims.ToArray().ToList();
        if (bVec) dims.RemoveAt(dims.Count - 1);
        if (aVec) dims.RemoveAt(dims.Count - (bVec ? 1 : 2));
        c.Emit(n, new ReshapeCopyOp(new Shape([.. dims])), [y], a.Type);
    }

    private static void Gemm(C c, OnnxNode n)
    {
        OnnxSym a = c.In(n, 0), b = c.In(n, 1);
        float alpha = n.GetFloat("alpha", 1f), beta = n.GetFloat("beta", 1f);
        string o = n.Outputs[0];
        if (n.GetInt("transA", 0) != 0) a = c.EmitTo(n, o + ":aT", new TransposeOp([1, 0]), [a], a.Type);
        bool transB = n.GetInt("transB", 0) != 0;
        var cIn = c.Has(n, 2) ? c.In(n, 2) : null;
        if (b.Const is { } w && !a.IsConst)
        {
            var wt = transB ? w : Transposed(w);
            var weight = new HostTensor(wt.Type, wt.Dims, wt.Data.Select(v => v * alpha).ToArray());
            int outN = weight.Shape[0];
            // A bias of the row's length (or a scalar) rides on Linear; any other C is added after.
            if (cIn?.Const is { } bias && (bias.Shape.Elements == 1 || bias.Shape.Rank >= 1 && bias.Shape[-1] == outN && bias.Shape.Elements == outN))
            {
                var bv = Enumerable.Range(0, outN).Select(i => bias.Data[bias.Data.Length == 1 ? 0 : i] * beta).ToArray();
                c.Emit(n, new LinearOp(), [a, Known(weight), Known(new HostTensor(bias.Type, [outN], bv))], a.Type);
                return;
            }
            if (cIn is null)
            {
                c.Emit(n, new LinearOp(), [a, Known(weight)], a.Type);
                return;
            }
            var lin = c.EmitTo(n, o + ":linear", new LinearOp(), [a, Known(weight)], a.Type);
            Binary(c, n, BinaryKind.Add, lin, Scaled(c, n, cIn, beta, o + ":betaC"));
            return;
        }
        if (transB) b = c.EmitTo(n, o + ":bT", new TransposeOp([1, 0]), [b], b.Type);
        var mm = c.EmitTo(n, o + ":mm", new MatMulOp(), [a, b], a.Type);
        if (alpha != 1f) mm = c.EmitTo(n, o + ":alpha", new BroadcastBinaryOp(BinaryKind.Mul), [mm, Scalar(a.Type, alpha)], a.Type);
        if (cIn is null) c.Emit(n, new ReshapeCopyOp(mm.Shape), [mm], a.Type);
        else Binary(c, n, BinaryKind.Add, mm, Scaled(c, n, cIn, beta, o + ":betaC"));
    }

    private static OnnxSym Scaled(C c, OnnxNode n, OnnxSym x, float s, string name) =>
        s == 1f ? x : c.EmitTo(n, name, new BroadcastBinaryOp(BinaryKind.Mul), [x, Scalar(x.Type, s)], x.Type);

    private static void Conv(C c, OnnxNode n)
    {
        OnnxSym x = c.In(n, 0), w = c.In(n, 1);
        OnnxSym? b = c.Has(n, 2) ? c.In(n, 2) : null;
        if (x.Shape.Rank != 4 || w.Shape.Rank != 4) throw c.Error(n, $"Conv of {x.Shape} by {w.Shape}: only 2-D convolutions are supported");
        var strides = n.GetInts("strides", [1, 1]);
        var dil = n.GetInts("dilations", [1, 1]);
        int kh = w.Shape[2], kw = w.Shape[3];
        var (pb, pe) = PadsNd(c, n, x.Shape, [kh, kw], [(int)strides[0], (int)strides[1]], [(int)dil[0], (int)dil[1]]);
        var (t, l, bo, r) = (pb[0], pb[1], pe[0], pe[1]);
        var options = new Conv2dOptions(groups: (int)n.GetInt("group", 1))
        {
            StrideH = (int)strides[0], StrideW = (int)strides[1], DilH = (int)dil[0], DilW = (int)dil[1],
            PadTop = t, PadLeft = l, PadBottom = bo, PadRight = r,
        };
        // Look ahead: a BatchNormalization (known statistics) folds into the weights, then a Relu / LeakyRelu into
        // the kernel's epilogue, each only when the value between has no other reader.
        string output = n.Outputs[0];
        if (Single(c, output) is { OpType: "BatchNormalization" } bn && w.Const is { } wk && (b is null || b.IsConst)
            && Enumerable.Range(1, 4).All(i => c.Has(bn, i) && c.In(bn, i).IsConst) && bn.Outputs.Skip(1).All(o => o == ""))
        {
            var (scale, shift) = BatchNormAffine(c, bn);
            int cout = w.Shape[0];
            long per = w.Shape.Elements / cout;
            var wd = (double[])wk.Data.Clone();
            var bd = new double[cout];
            for (int o = 0; o < cout; o++)
            {
                for (long j = 0; j < per; j++) wd[o * per + j] *= scale[o];
                bd[o] = (b?.Const!.Data[o] ?? 0) * scale[o] + shift[o];
            }
            w = Known(new HostTensor(wk.Type, wk.Dims, wd));
            b = Known(new HostTensor(wk.Type, [cout], bd));
            c.Skipped.Add(bn);
            output = bn.Outputs[0];
        }
        if (Single(c, output) is { OpType: "Relu" or "LeakyRelu" } act)
        {
            options = act.OpType == "Relu" ? options with { Act = Activation.Relu } : options with { Act = Activation.LeakyRelu, Slope = act.GetFloat("alpha", 0.01f) };
            c.Skipped.Add(act);
            output = act.Outputs[0];
        }
        c.EmitTo(n, output, new Conv2dOp(options), b is null ? [x, w] : [x, w, b], x.Type);
    }

    /// <summary>The one node reading <paramref name="value"/>, or null when it has several readers or is a graph output.</summary>
    private static OnnxNode? Single(C c, string value) => c.Consumers(value) is [{ } only] ? only : null;

    private static (double[] Scale, double[] Shift) BatchNormAffine(C c, OnnxNode n)
    {
        double eps = n.GetFloat("epsilon", 1e-5f);
        var g = c.Const(n, 1).Data;
        var beta = c.Const(n, 2).Data;
        var mean = c.Const(n, 3).Data;
        var var = c.Const(n, 4).Data;
        var scale = g.Select((v, i) => v / Math.Sqrt(var[i] + eps)).ToArray();
        return (scale, beta.Select((v, i) => v - mean[i] * scale[i]).ToArray());
    }

    private static void BatchNorm(C c, OnnxNode n)
    {
        var x = c.In(n, 0);
        if (n.Outputs.Skip(1).Any(o => o != "") || n.GetInt("training_mode", 0) != 0)
            throw new OnnxFeatureException(c.Model.File, n.Location, "BatchNormalization(training_mode)");
        var (scale, shift) = BatchNormAffine(c, n);
        var dims = new int[Math.Max(x.Shape.Rank - 1, 1)];
        Array.Fill(dims, 1);
        dims[0] = scale.Length;
        var scaled = c.EmitTo(n, n.Outputs[0] + ":scale", new BroadcastBinaryOp(BinaryKind.Mul), [x, Known(new HostTensor(x.Type, dims, scale))], x.Type);
        c.Emit(n, new BroadcastBinaryOp(BinaryKind.Add), [scaled, Known(new HostTensor(x.Type, dims, shift))], x.Type);
    }

    private static void LayerNorm(C c, OnnxNode n)
    {
        var x = c.In(n, 0);
        int rank = x.Shape.Rank, axis = NdIndex.Axis(n.GetInt("axis", -1), rank);
        float eps = n.GetFloat("epsilon", 1e-5f);
        var scale = c.In(n, 1);
        OnnxSym? bias = c.Has(n, 2) ? c.In(n, 2) : null;
        bool extra = n.Outputs.Skip(1).Any(o => o != "");
        if (axis == rank - 1 && !extra && scale.Shape.Rank == 1 && (bias is null || bias.Shape.Rank == 1))
        {
            bias ??= Known(new HostTensor(x.Type, [x.Shape[-1]], new double[x.Shape[-1]]));
            c.Emit(n, new LayerNormOp(eps), [x, scale, bias], x.Type);
            return;
        }
        // Other axes, or Mean / InvStdDev wanted: the definition, step by step on the generic ops.
        string o = n.Outputs[0];
        var axes = Enumerable.Range(axis, rank - axis).ToArray();
        var mean = c.EmitTo(n, n.Outputs.Count > 1 && n.Outputs[1] != "" ? n.Outputs[1] : o + ":mean", new ReduceOp(ReduceKind.Mean, axes, true), [x], x.Type);
        var d = c.EmitTo(n, o + ":d", new BroadcastBinaryOp(BinaryKind.Sub), [x, mean], x.Type);
        var d2 = c.EmitTo(n, o + ":d2", new BroadcastBinaryOp(BinaryKind.Mul), [d, d], x.Type);
        var variance = c.EmitTo(n, o + ":var", new ReduceOp(ReduceKind.Mean, axes, true), [d2], x.Type);
        var ve = c.EmitTo(n, o + ":var_eps", new BroadcastBinaryOp(BinaryKind.Add), [variance, Scalar(x.Type, eps)], x.Type);
        var std = c.EmitTo(n, o + ":std", new UnaryMathOp(UnaryKind.Sqrt), [ve], x.Type);
        var inv = c.EmitTo(n, n.Outputs.Count > 2 && n.Outputs[2] != "" ? n.Outputs[2] : o + ":inv", new UnaryMathOp(UnaryKind.Reciprocal), [std], x.Type);
        var normed = c.EmitTo(n, o + ":normed", new BroadcastBinaryOp(BinaryKind.Mul), [d, inv], x.Type);
        if (bias is null) c.Emit(n, new BroadcastBinaryOp(BinaryKind.Mul), [normed, scale], x.Type);
        else
        {
            var scaled = c.EmitTo(n, o + ":scaled", new BroadcastBinaryOp(BinaryKind.Mul), [normed, scale], x.Type);
            c.Emit(n, new BroadcastBinaryOp(BinaryKind.Add), [scaled, bias], x.Type);
        }
    }

    private static void Pool(C c, OnnxNode n, PoolKind kind)
    {
        var x = c.In(n, 0);
        var k = n.GetInts("kernel_shape").Select(v => (int)v).ToArray();
        int sp = k.Length;
        if (x.Shape.Rank != sp + 2) throw c.Error(n, $"{n.OpType} kernel [{string.Join(", ", k)}] over {x.Shape}");
        var s = n.GetInts("strides", Enumerable.Repeat(1L, sp).ToArray()).Select(v => (int)v).ToArray();
        var d = n.GetInts("dilations", Enumerable.Repeat(1L, sp).ToArray()).Select(v => (int)v).ToArray();
        var (pb, pe) = PadsNd(c, n, x.Shape, k, s, d);
        bool countPad = n.GetInt("count_include_pad", 0) != 0, ceil = n.GetInt("ceil_mode", 0) != 0;
        // The engine's pool (with GPU kernels) when the window is square and the pads symmetric and at most half of it.
        if (!x.IsConst && sp == 2 && k[0] == k[1] && s[0] == s[1] && d[0] == d[1] && pb.Concat(pe).Distinct().Count() == 1 && pb[0] <= k[0] / 2 && !ceil
            && (kind == PoolKind.Max || d[0] == 1))
            c.Emit(n, new Pool2dOp(kind, k[0], s[0], pb[0], d[0], countPad), [x], x.Type);
        else
            c.Emit(n, new PoolNdOp(kind == PoolKind.Max, k, s, d, pb, pe, ceil, countPad), [x], x.Type);
        if (kind == PoolKind.Max && n.Outputs.Count > 1 && n.Outputs[1] != "")
        {
            c.CheckIndexRange(n, x.Shape.Elements);
            c.Emit(n, new MaxPoolIndicesOp(k, s, d, pb, pe, ceil, (int)n.GetInt("storage_order", 0)), [x], OnnxDataType.Int64, 1, index: true);
        }
    }

    /// <summary>ONNX pads of a window op per spatial axis: explicit, or from auto_pad (SAME_UPPER puts the odd pixel at the end).</summary>
    private static (int[] Begin, int[] End) PadsNd(C c, OnnxNode n, Shape x, int[] k, int[] s, int[] d)
    {
        int sp = k.Length;
        string auto = n.GetString("auto_pad", "NOTSET");
        var b = new int[sp];
        var e = new int[sp];
        if (auto is "NOTSET")
        {
            var p = n.GetInts("pads", new long[2 * sp]);
            if (p.Count != 2 * sp) throw c.Error(n, $"{n.OpType} pads has {p.Count} values for {sp} spatial axes");
            for (int i = 0; i < sp; i++) (b[i], e[i]) = ((int)p[i], (int)p[i + sp]);
            return (b, e);
        }
        if (auto == "VALID") return (b, e);
        if (auto is not ("SAME_UPPER" or "SAME_LOWER")) throw c.Error(n, $"auto_pad '{auto}'");
        for (int i = 0; i < sp; i++)
        {
            int size = x[i + 2], total = Math.Max(0, ((size + s[i] - 1) / s[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size);
            (b[i], e[i]) = auto == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2);
        }
        return (b, e);
    }
}
