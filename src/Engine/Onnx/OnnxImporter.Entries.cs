using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Pool;
using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>The importer's table: one entry per ONNX op type. An entry reads attributes and inputs and emits (or folds).</summary>
public static partial class OnnxImporter
{
    private static readonly Dictionary<string, Action<C, OnnxNode>> Entries = Build();

    private static Dictionary<string, Action<C, OnnxNode>> Build()
    {
        var e = new Dictionary<string, Action<C, OnnxNode>>(StringComparer.Ordinal);
        foreach (var (name, kind) in new[] { ("Add", BinaryKind.Add), ("Sub", BinaryKind.Sub), ("Mul", BinaryKind.Mul), ("Div", BinaryKind.Div),
                     ("Pow", BinaryKind.Pow), ("PRelu", BinaryKind.PRelu) })
            e[name] = (c, n) => Binary(c, n, kind, c.In(n, 0), c.In(n, 1));
        e["Mod"] = (c, n) => Binary(c, n, n.GetInt("fmod", 0) != 0 ? BinaryKind.Fmod : BinaryKind.Mod, c.In(n, 0), c.In(n, 1));
        foreach (var (name, kind) in new[] { ("Max", BinaryKind.Max), ("Min", BinaryKind.Min), ("Sum", BinaryKind.Add) })
            e[name] = (c, n) => Variadic(c, n, kind);
        e["Mean"] = (c, n) =>
        {
            Variadic(c, n, BinaryKind.Add);
            var s = c.Sym(n.Outputs[0]);
            Binary(c, n, BinaryKind.Div, s, Scalar(s.Type, n.Inputs.Count(i => i != "")));
        };
        foreach (var kind in Enum.GetValues<UnaryKind>())
            if (kind is not (UnaryKind.Clip or UnaryKind.Identity or UnaryKind.LeakyRelu or UnaryKind.Elu or UnaryKind.Selu or UnaryKind.HardSigmoid
                or UnaryKind.ThresholdedRelu or UnaryKind.Celu))
                e[kind.ToString()] = (c, n) => Unary(c, n, kind, 0, 0);
        e["LeakyRelu"] = (c, n) => Unary(c, n, UnaryKind.LeakyRelu, n.GetFloat("alpha", 0.01f), 0);
        e["Elu"] = (c, n) => Unary(c, n, UnaryKind.Elu, n.GetFloat("alpha", 1f), 0);
        e["Celu"] = (c, n) => Unary(c, n, UnaryKind.Celu, n.GetFloat("alpha", 1f), 0);
        e["ThresholdedRelu"] = (c, n) => Unary(c, n, UnaryKind.ThresholdedRelu, n.GetFloat("alpha", 1f), 0);
        e["Selu"] = (c, n) => Unary(c, n, UnaryKind.Selu, n.GetFloat("alpha", 1.67326319217681884765625f), n.GetFloat("gamma", 1.05070102214813232421875f));
        e["HardSigmoid"] = (c, n) => Unary(c, n, UnaryKind.HardSigmoid, n.GetFloat("alpha", 0.2f), n.GetFloat("beta", 0.5f));
        e["Clip"] = (c, n) =>
        {
            float lo = c.Opset >= 11 ? c.Has(n, 1) ? (float)c.Const(n, 1).Data[0] : float.NegativeInfinity : n.GetFloat("min", float.NegativeInfinity);
            float hi = c.Opset >= 11 ? c.Has(n, 2) ? (float)c.Const(n, 2).Data[0] : float.PositiveInfinity : n.GetFloat("max", float.PositiveInfinity);
            Unary(c, n, UnaryKind.Clip, lo, hi);
        };
        e["Identity"] = (c, n) => Reshape(c, n, c.In(n, 0).Shape);
        e["Dropout"] = (c, n) =>
        {
            // Inference, or training with ratio 0: the identity, and a mask of all true. Random masks are not implemented.
            double ratio = c.Opset >= 12 ? c.Has(n, 1) ? c.Const(n, 1).Data[0] : 0.5 : n.GetFloat("ratio", 0.5f);
            bool training = c.Opset >= 12 && c.Has(n, 2) && c.Const(n, 2).Data[0] != 0;
            if (training && ratio != 0) throw new OnnxFeatureException(c.Model.File, n.Location, $"Dropout(training_mode, ratio {ratio:G6})");
            Reshape(c, n, c.In(n, 0).Shape);
            if (n.Outputs.Count > 1 && n.Outputs[1] != "")
            {
                var ones = new double[c.In(n, 0).Shape.Elements];
                Array.Fill(ones, 1.0);
                c.Set(n.Outputs[1], new HostTensor(OnnxDataType.Bool, c.In(n, 0).Shape.Dims.ToArray(), ones));
            }
        };
        e["Reshape"] = (c, n) => Reshape(c, n, ReshapeTarget(c.In(n, 0).Shape, c.Const(n, 1).Longs(), n.GetInt("allowzero", 0) != 0));
        e["Flatten"] = (c, n) =>
        {
            var x = c.In(n, 0).Shape;
            long ax = n.GetInt("axis", 1);
            int axis = (int)(ax < 0 ? ax + x.Rank : ax);
            if (axis < 0 || axis > x.Rank) throw c.Error(n, $"Flatten axis {ax} for {x}");
            long outer = 1;
            for (int i = 0; i < axis; i++) outer *= x[i];
            Reshape(c, n, new Shape(checked((int)outer), checked((int)(x.Elements / Math.Max(outer, 1)))));
        };
        e["Squeeze"] = (c, n) =>
        {
            var x = c.In(n, 0).Shape;
            var axes = Axes(c, n, 1, "axes", x.Rank);
            var dims = Enumerable.Range(0, x.Rank).Where(i => axes is null ? x[i] != 1 : !axes.Contains(i)).Select(i => x[i]).ToArray();
            if (axes is not null && axes.Any(a => x[a] != 1)) throw c.Error(n, $"Squeeze of axes that are not 1 in {x}");
            Reshape(c, n, new Shape(dims));
        };
        e["Unsqueeze"] = (c, n) =>
        {
            var x = c.In(n, 0).Shape;
            var raw = c.Opset >= 13 ? c.Const(n, 1).Longs() : n.GetInts("axes").ToArray();
            int rank = x.Rank + raw.Length;
            var axes = raw.Select(a => NdIndex.Axis(a, rank)).ToHashSet();
            var dims = new int[rank];
            for (int i = 0, k = 0; i < rank; i++) dims[i] = axes.Contains(i) ? 1 : x[k++];
            Reshape(c, n, new Shape(dims));
        };
        e["Transpose"] = (c, n) =>
        {
            var x = c.In(n, 0);
            var perm = n.GetInts("perm", Enumerable.Range(0, x.Shape.Rank).Reverse().Select(i => (long)i).ToArray()).Select(p => (int)p).ToArray();
            c.Emit(n, new TransposeOp(perm), [x], x.Type);
        };
        e["Concat"] = (c, n) =>
        {
            var xs = Enumerable.Range(0, n.Inputs.Count).Where(i => c.Has(n, i)).Select(i => c.In(n, i)).ToArray();
            c.Emit(n, new ConcatOp(NdIndex.Axis(n.GetInt("axis"), xs[0].Shape.Rank)), xs, xs[0].Type);
        };
        e["Slice"] = Slice;
        e["Split"] = (c, n) =>
        {
            var x = c.In(n, 0);
            int axis = NdIndex.Axis(n.GetInt("axis", 0), x.Shape.Rank), d = x.Shape[axis], parts = n.Outputs.Count;
            long[] sizes = c.Has(n, 1) ? c.Const(n, 1).Longs() : n.HasAttribute("split") ? n.GetInts("split").ToArray()
                : Enumerable.Range(0, parts).Select(i => (long)((d + parts - 1) / parts)).Select((v, i) => Math.Min(v, Math.Max(0, d - i * v))).ToArray();
            if (sizes.Length != parts || sizes.Sum() != d) throw c.Error(n, $"Split sizes [{string.Join(", ", sizes)}] do not cut axis {axis} of {x.Shape} into {parts}");
            long start = 0;
            for (int i = 0; i < parts; i++)
            {
                var (st, step, len) = SliceAxes(x.Shape, [start], [start + sizes[i]], [axis], [1]);
                start += sizes[i];
                if (n.Outputs[i] != "") c.Emit(n, new SliceOp(st, step, len), [x], x.Type, i);
            }
        };
        e["Pad"] = Pad;
        e["Gather"] = (c, n) =>
        {
            var x = c.In(n, 0);
            var idx = c.Const(n, 1);
            int axis = NdIndex.Axis(n.GetInt("axis", 0), x.Shape.Rank);
            var ind = idx.Longs().Select(i => i < 0 ? i + x.Shape[axis] : i).ToArray();
            c.Emit(n, new GatherOp(axis, ind, idx.Dims), [x], x.Type);
        };
        e["Expand"] = (c, n) =>
        {
            var x = c.In(n, 0);
            c.Emit(n, new ExpandOp(new Shape(c.Const(n, 1).Longs().Select(d => checked((int)d)).ToArray())), [x], x.Type);
        };
        e["Softmax"] = (c, n) => Softmax(c, n, log: false);
        e["LogSoftmax"] = (c, n) => Softmax(c, n, log: true);
        foreach (var (name, kind) in new[] { ("ReduceSum", ReduceKind.Sum), ("ReduceMean", ReduceKind.Mean), ("ReduceMax", ReduceKind.Max),
                     ("ReduceMin", ReduceKind.Min), ("ReduceProd", ReduceKind.Prod), ("ReduceSumSquare", ReduceKind.SumSquare),
                     ("ReduceL1", ReduceKind.L1), ("ReduceL2", ReduceKind.L2), ("ReduceLogSum", ReduceKind.LogSum), ("ReduceLogSumExp", ReduceKind.LogSumExp) })
            e[name] = (c, n) => Reduce(c, n, kind);
        e["GlobalAveragePool"] = (c, n) => GlobalPool(c, n, ReduceKind.Mean);
        e["GlobalMaxPool"] = (c, n) => GlobalPool(c, n, ReduceKind.Max);
        e["MatMul"] = MatMul;
        e["Gemm"] = Gemm;
        e["Conv"] = Conv;
        e["MaxPool"] = (c, n) => Pool(c, n, PoolKind.Max);
        e["AveragePool"] = (c, n) => Pool(c, n, PoolKind.Avg);
        e["BatchNormalization"] = BatchNorm;
        e["LayerNormalization"] = LayerNorm;
        AddFolding(e);
        AddResize(e);
        AddIndexOps(e);
        AddConvTranspose(e);
        AddTensorOps(e);
        return e;
    }

    private static OnnxSym Scalar(OnnxDataType type, double v) { var t = HostTensor.Scalar(type, v); return new OnnxSym { Const = t, Type = type, Shape = t.Shape }; }

    private static void Binary(C c, OnnxNode n, BinaryKind kind, OnnxSym a, OnnxSym b, int output = 0)
    {
        // Same shapes on the engine's Add (it has GPU kernels); broadcasting on the generic op.
        Op op = kind == BinaryKind.Add && a.Shape == b.Shape && !(a.IsConst && b.IsConst) ? new AddOp() : new BroadcastBinaryOp(kind);
        c.Emit(n, op, [a, b], a.Type, output);
    }

    private static void Variadic(C c, OnnxNode n, BinaryKind kind)
    {
        var xs = Enumerable.Range(0, n.Inputs.Count).Where(i => c.Has(n, i)).Select(i => c.In(n, i)).ToArray();
        if (xs.Length == 1)
        {
            Reshape(c, n, xs[0].Shape);
            return;
        }
        var acc = xs[0];
        for (int i = 1; i < xs.Length; i++)
        {
            Binary(c, n, kind, acc, xs[i]);
            acc = c.Sym(n.Outputs[0]);
        }
    }

    private static void Unary(C c, OnnxNode n, UnaryKind kind, float alpha, float beta)
    {
        var x = c.In(n, 0);
        Op op = x.IsConst ? new UnaryMathOp(kind, alpha, beta) : kind switch
        {
            UnaryKind.Relu => new ReluOp(),
            UnaryKind.LeakyRelu => new LeakyReluOp(alpha),
            UnaryKind.Gelu => new GeluOp(),
            _ => new UnaryMathOp(kind, alpha, beta),
        };
        c.Emit(n, op, [x], x.Type);
    }

    private static void Reshape(C c, OnnxNode n, Shape target)
    {
        var x = c.In(n, 0);
        c.Emit(n, new ReshapeCopyOp(target), [x], x.Type);
    }

    /// <summary>Reshape's target: 0 copies the input's dim (unless allowzero), one -1 takes what is left.</summary>
    public static Shape ReshapeTarget(Shape x, long[] shape, bool allowZero)
    {
        var dims = new long[shape.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            long d = shape[i] == 0 && !allowZero ? (i < x.Rank ? x[i] : throw new ArgumentException($"reshape dim {i} is 0 but {x} has no dim {i}")) : shape[i];
            if (d == -1)
            {
                if (infer >= 0) throw new ArgumentException("reshape has two -1 dims");
                infer = i;
                continue;
            }
            if (d < 0) throw new ArgumentException($"reshape dim {d}");
            dims[i] = d;
            known *= d;
        }
        if (infer >= 0)
        {
            if (known == 0 || x.Elements % known != 0) throw new ArgumentException($"cannot reshape {x} to [{string.Join(", ", shape)}]");
            dims[infer] = x.Elements / known;
        }
        var s = new Shape(dims.Select(d => checked((int)d)).ToArray());
        if (s.Elements != x.Elements) throw new ArgumentException($"cannot reshape {x} to {s}");
        return s;
    }

    /// <summary>Axes from input <paramref name="input"/> (newer opsets) or attribute <paramref name="attr"/>; null when absent.</summary>
    private static int[]? Axes(C c, OnnxNode n, int input, string attr, int rank)
    {
        long[]? raw = c.Has(n, input) ? c.Const(n, input).Longs() : n.HasAttribute(attr) ? n.GetInts(attr).ToArray() : null;
        return raw?.Select(a => NdIndex.Axis(a, rank)).Distinct().ToArray();
    }
}
