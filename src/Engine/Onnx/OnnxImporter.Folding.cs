using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// Entries of ops evaluated at import only (shape arithmetic, comparisons, casts): their inputs must be known, except
/// Shape and Size, which read only the static shape of a runtime value.
/// </summary>
public static partial class OnnxImporter
{
    private static void AddFolding(Dictionary<string, Action<C, OnnxNode>> e)
    {
        e["Constant"] = (c, n) =>
        {
            var t = n.TryGetAttribute("value", out var v) ? HostTensor.From(v.AsTensor())
                : n.TryGetAttribute("value_float", out v) ? HostTensor.Scalar(OnnxDataType.Float, v.AsFloat())
                : n.TryGetAttribute("value_floats", out v) ? new HostTensor(OnnxDataType.Float, [v.AsFloats().Count], v.AsFloats().Select(f => (double)f).ToArray())
                : n.TryGetAttribute("value_int", out v) ? HostTensor.Scalar(OnnxDataType.Int64, v.AsInt())
                : n.TryGetAttribute("value_ints", out v) ? HostTensor.Vector(OnnxDataType.Int64, v.AsInts())
                : throw c.Error(n, "Constant without a value, value_float(s) or value_int(s) attribute");
            c.Set(n.Outputs[0], t);
        };
        e["Shape"] = (c, n) =>
        {
            var dims = c.In(n, 0).Shape.Dims.ToArray();
            int rank = dims.Length;
            long start = n.GetInt("start", 0), end = n.GetInt("end", rank);
            int s = (int)Math.Clamp(start < 0 ? start + rank : start, 0, rank), en = (int)Math.Clamp(end < 0 ? end + rank : end, 0, rank);
            c.Set(n.Outputs[0], HostTensor.Vector(OnnxDataType.Int64, dims[s..Math.Max(s, en)].Select(d => (long)d)));
        };
        e["Size"] = (c, n) => c.Set(n.Outputs[0], HostTensor.Scalar(OnnxDataType.Int64, c.In(n, 0).Shape.Elements));
        e["ConstantOfShape"] = (c, n) =>
        {
            var dims = c.Const(n, 0).Longs().Select(d => checked((int)d)).ToArray();
            var value = n.TryGetAttribute("value", out var v) ? HostTensor.From(v.AsTensor()) : HostTensor.Scalar(OnnxDataType.Float, 0);
            var data = new double[new Shape(dims).Elements];
            Array.Fill(data, value.Data[0]);
            c.Set(n.Outputs[0], new HostTensor(value.Type, dims, data));
        };
        e["Range"] = (c, n) =>
        {
            var s = c.Const(n, 0);
            double start = s.Data[0], limit = c.Const(n, 1).Data[0], delta = c.Const(n, 2).Data[0];
            long count = Math.Max((long)Math.Ceiling((limit - start) / delta), 0);
            c.Set(n.Outputs[0], new HostTensor(s.Type, [checked((int)count)], Enumerable.Range(0, (int)count).Select(i => HostTensor.Round(s.Type, start + i * delta)).ToArray()));
        };
        e["Cast"] = (c, n) => CastTo(c, n, (OnnxDataType)n.GetInt("to"));
        // CastLike: Cast to the second input's type (its values are not read).
        e["CastLike"] = (c, n) => CastTo(c, n, c.In(n, 1).Type);
        foreach (var (name, f) in new (string, Func<double, double, bool>)[] { ("Equal", (a, b) => a == b), ("Less", (a, b) => a < b),
                     ("Greater", (a, b) => a > b), ("LessOrEqual", (a, b) => a <= b), ("GreaterOrEqual", (a, b) => a >= b),
                     ("And", (a, b) => a != 0 && b != 0), ("Or", (a, b) => a != 0 || b != 0), ("Xor", (a, b) => (a != 0) != (b != 0)) })
            e[name] = (c, n) =>
            {
                var (x, shape) = Broadcast(c.Const(n, 0), c.Const(n, 1));
                c.Set(n.Outputs[0], new HostTensor(OnnxDataType.Bool, shape, x[0].Zip(x[1], (a, b) => f(a, b) ? 1.0 : 0.0).ToArray()));
            };
        e["Not"] = (c, n) =>
        {
            var x = c.Const(n, 0);
            c.Set(n.Outputs[0], new HostTensor(OnnxDataType.Bool, x.Dims, x.Data.Select(v => v == 0 ? 1.0 : 0.0).ToArray()));
        };
        e["ScatterND"] = (c, n) =>
        {
            // Exporters build masks with it (shifted-window attention) from constants only: fold-only.
            HostTensor data = c.Const(n, 0), idx = c.Const(n, 1), upd = c.Const(n, 2);
            string reduction = n.GetString("reduction", "none");
            if (reduction is not ("none" or "add" or "mul" or "max" or "min")) throw c.Error(n, $"ScatterND reduction '{reduction}'");
            var dd = data.Dims;
            int k = idx.Dims[^1];
            if (k > dd.Length) throw c.Error(n, $"ScatterND index tuples of {k} into {data.Shape}");
            long slice = 1;
            for (int i = k; i < dd.Length; i++) slice *= dd[i];
            var strides = NdIndex.Strides(dd);
            var y = (double[])data.Data.Clone();
            var ind = idx.Longs();
            long tuples = ind.Length / Math.Max(k, 1);
            if (upd.Data.Length != tuples * slice) throw c.Error(n, $"ScatterND updates {upd.Shape} do not match indices {idx.Shape} into {data.Shape}");
            for (long t = 0; t < tuples; t++)
            {
                long off = 0;
                for (int a = 0; a < k; a++)
                {
                    long v = ind[t * k + a];
                    if (v < 0) v += dd[a];
                    if (v < 0 || v >= dd[a]) throw c.Error(n, $"ScatterND index {ind[t * k + a]} out of range for axis {a} of {data.Shape}");
                    off += v * strides[a];
                }
                for (long j = 0; j < slice; j++)
                {
                    double u = upd.Data[t * slice + j], old = y[off + j];
                    y[off + j] = HostTensor.Round(data.Type, reduction switch
                    {
                        "add" => old + u, "mul" => old * u, "max" => Math.Max(old, u), "min" => Math.Min(old, u), _ => u,
                    });
                }
            }
            c.Set(n.Outputs[0], new HostTensor(data.Type, dd, y));
        };
        e["Where"] = (c, n) =>
        {
            HostTensor cond = c.Const(n, 0), a = c.Const(n, 1);
            var (x, shape) = Broadcast(cond, a, c.Const(n, 2));
            c.Set(n.Outputs[0], new HostTensor(a.Type, shape, x[0].Select((k, i) => k != 0 ? x[1][i] : x[2][i]).ToArray()));
        };
    }

    private static void CastTo(C c, OnnxNode n, OnnxDataType to)
    {
        var x = c.In(n, 0);
        if (to == OnnxDataType.String) throw new OnnxFeatureException(c.Model.File, n.Location, "STRING tensors");
        if (x.Const is { } k)
        {
            c.Set(n.Outputs[0], new HostTensor(to, k.Dims, k.Data.Select(v => HostTensor.Round(to, v)).ToArray()));
            return;
        }
        // A runtime index (integer already, range checked) stays exact as INT64 / INT32; other casts to integers fold only.
        bool index = !HostTensor.IsFloatType(x.Type) && to is (OnnxDataType.Int64 or OnnxDataType.Int32);
        if (!HostTensor.IsFloatType(to) && !index) throw c.IntegerAtRuntime(n, $"{to.ProtoName()} '{n.Outputs[0]}'");
        // To a narrower float type: round in float (runtime values stay float32), else the value passes through.
        if (to == OnnxDataType.BFloat16 && x.Type != OnnxDataType.BFloat16) c.Emit(n, new UnaryMathOp(UnaryKind.ToBFloat16, 0, 0), [x], to);
        else if (to == OnnxDataType.Float16 && x.Type is not (OnnxDataType.Float16 or OnnxDataType.BFloat16))
            c.Emit(n, new UnaryMathOp(UnaryKind.ToFloat16, 0, 0), [x], to);
        else c.Set(n.Outputs[0], new OnnxSym { Runtime = x.Runtime, Type = to, Shape = x.Shape });
    }

    /// <summary>The tensors' values expanded to their common (numpy) shape.</summary>
    private static (double[][] Values, int[] Shape) Broadcast(params HostTensor[] ts)
    {
        int[] shape = [];
        foreach (var t in ts)
            shape = NdIndex.Broadcast(shape, t.Dims) ?? throw new ArgumentException($"shapes {string.Join(", ", ts.Select(x => x.Shape))} do not broadcast");
        var values = ts.Select(t =>
        {
            var y = new double[NdIndex.Elements(shape)];
            NdLayout.Expand<double>(t.Data, t.Dims, y, shape);
            return y;
        }).ToArray();
        return (values, shape);
    }
}
