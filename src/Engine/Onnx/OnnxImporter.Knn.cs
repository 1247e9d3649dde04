using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>
/// PatchCore's memory-bank distance as exporters write it (torch.cdist does not export), mapped onto the kNN op:
/// <code>
///   ReduceSum(Pow(q, 2), axis 1, keepdims) - MatMul(Mul(q, s), W) + c  ->  [Clip(min 0)]  ->  ReduceMin(axis 1)  ->  [Clip(min 0)]
/// </code>
/// with q [Q, D] computed at run time, W [D, N] and c ([N] or [1, N]) known at import, s a known scalar (the 2 of
/// -2 q.M^T; also written Mul(MatMul(q, W), s), or absent), a Clip / Relu at 0 before or after the min. The bank is
/// M = (s / 2) W^T and its norms are c as given, so the kNN computes the same sum; the clamp makes the kNN kernels'
/// own clamp at 0 exact (a clamp after the min is then a no-op, absorbed). Found before the import walk (the values
/// between have one reader each and are not graph outputs; the clamp's bounds are initializers or Constant nodes),
/// held back, and emitted at the ReduceMin: as one <see cref="KnnOp"/> (k = 1) when the known parts check out
/// there, else node by node as written.
/// </summary>
public static partial class OnnxImporter
{
    internal sealed record KnnMatch(OnnxNode Min, string Query, OnnxNode Square, OnnxNode SumSquares, OnnxNode? Scale, OnnxNode MatMul,
        OnnxNode Sub, OnnxNode Add, string Norms, OnnxNode? ClampFirst, OnnxNode? ClampAfter, IReadOnlyList<OnnxNode> Held);

    /// <summary>The distance subgraphs of the model by their ReduceMin; their nodes before it join <c>c.Skipped</c>.</summary>
    internal static Dictionary<OnnxNode, KnnMatch> FindKnn(C c, IReadOnlyList<OnnxNode> order)
    {
        var found = new Dictionary<OnnxNode, KnnMatch>();
        var producer = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (var n in order)
            foreach (var o in n.Outputs.Where(o => o != ""))
                producer[o] = n;
        OnnxNode? From(string v) => v != "" && producer.TryGetValue(v, out var p) && !c.Skipped.Contains(p) ? p : null;
        // A value between two nodes of the pattern: read by that one node only, not a graph output.
        bool Inner(OnnxNode n) => n.Outputs.Count >= 1 && Single(c, n.Outputs[0]) is not null;

        foreach (var min in order.Where(n => n.OpType == "ReduceMin" && n.Inputs.Count >= 1 && !c.Skipped.Contains(n)))
        {
            var add = From(min.Inputs[0]);
            OnnxNode? clamp = null;
            if (add is { OpType: "Clip" or "Relu" })
            {
                clamp = add;
                add = From(add.Inputs[0]);
            }
            if (add is not { OpType: "Add", Inputs.Count: 2 }) continue;
            int s = From(add.Inputs[0]) is { OpType: "Sub" } ? 0 : From(add.Inputs[1]) is { OpType: "Sub" } ? 1 : -1;
            if (s < 0) continue;
            var sub = From(add.Inputs[s])!;
            if (sub.Inputs.Count != 2 || From(sub.Inputs[0]) is not { OpType: "ReduceSum" or "ReduceSumSquare" } sum) continue;
            var square = sum.OpType == "ReduceSumSquare" ? sum : From(sum.Inputs[0]);
            if (square is null || (square != sum && square.OpType is not ("Pow" or "Mul"))) continue;
            string q = square.Inputs[0];
            if (square.OpType == "Mul" && square.Inputs[1] != q) continue;
            // -s q.W: MatMul(Mul(q, s), W), MatMul(Mul(s, q), W), Mul(MatMul(q, W), s), or MatMul(q, W).
            OnnxNode? scale = null, matmul = From(sub.Inputs[1]);
            if (matmul is { OpType: "Mul", Inputs.Count: 2 })
            {
                scale = matmul;
                matmul = From(scale.Inputs[0]) is { OpType: "MatMul" } m0 ? m0 : From(scale.Inputs[1]) is { OpType: "MatMul" } m1 ? m1 : null;
            }
            if (matmul is not { OpType: "MatMul", Inputs.Count: 2 }) continue;
            if (matmul.Inputs[0] != q)
            {
                if (scale is not null || From(matmul.Inputs[0]) is not { OpType: "Mul", Inputs.Count: 2 } pre || !pre.Inputs.Contains(q)) continue;
                scale = pre;
            }
            List<OnnxNode> held = [.. new[] { square, sum, scale, matmul, sub, add, clamp }.OfType<OnnxNode>().Distinct()];
            if (!held.All(Inner) || held.Any(n => n.Outputs.Count != 1)) continue;
            // The clamp that makes the kNN's own clamp exact; one after the min is absorbed too (the kNN's output is
            // already >= 0), so it is held with the rest.
            var after = clamp is null ? Single(c, min.Outputs[0]) : null;
            if (!ClampsAtZero(c, clamp ?? after)) continue;
            held.Sort((a, b) => Index(order, a).CompareTo(Index(order, b)));
            found[min] = new KnnMatch(min, q, square, sum, scale, matmul, sub, add, add.Inputs[1 - s], clamp, after, held);
            foreach (var n in held) c.Skipped.Add(n);
            if (after is not null) c.Skipped.Add(after);
        }
        return found;
    }

    private static int Index(IReadOnlyList<OnnxNode> order, OnnxNode n)
    {
        for (int i = 0; i < order.Count; i++)
            if (order[i] == n) return i;
        return -1;
    }

    /// <summary>At the match's ReduceMin: the kNN op when the known parts fit, else every held node as written.</summary>
    internal static void EmitKnn(C c, KnnMatch m)
    {
        if (KnnInputs(c, m) is { } k)
        {
            var (q, bank, norms, keepDims) = k;
            var knn = new KnnOp(1);
            string output = (m.ClampAfter ?? m.Min).Outputs[0];
            if (keepDims) c.EmitTo(m.Min, output, knn, [q, bank, norms], q.Type);
            else c.EmitTo(m.Min, output, new ReshapeCopyOp(new Shape(q.Shape[0])), [c.EmitTo(m.Min, output + ":knn", knn, [q, bank, norms], q.Type)], q.Type);
            return;
        }
        foreach (var n in m.Held.Append(m.Min).Concat(m.ClampAfter is { } clamp ? [clamp] : []))
        {
            // Emitted here, at the min: a problem is still reported at the node that has it.
            try { Entries[n.OpType](c, n); }
            catch (ArgumentException e) { throw new OnnxImportException(c.Model.File, n.Location, $"{n.OpType}: {e.Message}"); }
            catch (ShapeMismatchException e) { throw new OnnxImportException(c.Model.File, n.Location, $"{n.OpType}: {e.Message}"); }
        }
    }

    private static (OnnxSym Q, OnnxSym Bank, OnnxSym Norms, bool KeepDims)? KnnInputs(C c, KnnMatch m)
    {
        var q = c.Sym(m.Query);
        if (q.IsConst || q.Shape.Rank != 2 || q.Type != OnnxDataType.Float) return null;
        int d = q.Shape[1];
        if (m.Square != m.SumSquares && !(m.Square.OpType == "Pow" ? IsScalar(c.In(m.Square, 1), 2) : m.Square.Inputs[1] == m.Query)) return null;
        if (!ReducesLastOf2(c, m.SumSquares, out bool sumKeeps) || !sumKeeps || !ReducesLastOf2(c, m.Min, out bool keepDims)) return null;
        if (m.Sub.Inputs[0] != m.SumSquares.Outputs[0]) return null;
        var w = c.In(m.MatMul, 1).Const;
        if (w is null || w.Shape.Rank != 2 || w.Shape[0] != d) return null;
        int n = w.Shape[1];
        double s = 1;
        if (m.Scale is { } scale)
        {
            var other = Other(c, scale, scale.Inputs.Contains(m.Query) ? m.Query : m.MatMul.Outputs[0]);
            if (other?.Const is not { Data.Length: 1 } t) return null;
            s = t.Data[0];
        }
        if (!(s > 0)) return null;
        var c2 = c.TrySym(m.Norms)?.Const;
        if (c2 is null || c2.Shape.Elements != n || !(c2.Shape.Rank == 1 || (c2.Shape.Rank == 2 && c2.Shape[0] == 1))) return null;
        // M = (s / 2) W^T: row j of the bank is column j of W.
        var bank = new double[(long)n * d];
        for (int i = 0; i < d; i++)
            for (int j = 0; j < n; j++)
                bank[(long)j * d + i] = HostTensor.Round(OnnxDataType.Float, s / 2 * w.Data[(long)i * n + j]);
        var bankT = new HostTensor(OnnxDataType.Float, [n, d], bank);
        var normsT = new HostTensor(OnnxDataType.Float, [n], c2.Data);
        return (q, new OnnxSym { Const = bankT, Type = bankT.Type, Shape = bankT.Shape }, new OnnxSym { Const = normsT, Type = normsT.Type, Shape = normsT.Shape }, keepDims);
    }

    /// <summary>A reduction of a rank-2 value (q or the distances: held, so not computed yet) over its last axis only (axes as input or attribute by opset).</summary>
    private static bool ReducesLastOf2(C c, OnnxNode n, out bool keepDims)
    {
        keepDims = n.GetInt("keepdims", 1) != 0;
        bool axesInput = c.Opset >= 18 || (n.OpType == "ReduceSum" && c.Opset >= 13);
        long[]? axes = axesInput ? (c.Has(n, 1) ? c.In(n, 1).Const?.Longs() : null) : n.HasAttribute("axes") ? n.GetInts("axes").ToArray() : null;
        return axes is [var a] && NdIndex.Axis(a, 2) == 1;
    }

    /// <summary>Relu, or Clip with a known lower bound of 0 and no upper bound (opset 11 inputs, or the older attributes).</summary>
    private static bool ClampsAtZero(C c, OnnxNode? n)
    {
        if (n is null) return false;
        if (n.OpType == "Relu") return true;
        if (n.OpType != "Clip") return false;
        if (c.Opset < 11) return n.GetFloat("min", float.NegativeInfinity) == 0 && float.IsPositiveInfinity(n.GetFloat("max", float.PositiveInfinity));
        return c.Has(n, 1) && IsZero(c.TrySym(n.Inputs[1])) && (!c.Has(n, 2) || c.TrySym(n.Inputs[2])?.Const is { Data: [double.PositiveInfinity] });
    }

    private static bool IsZero(OnnxSym? s) => s?.Const is { Data: [0.0] };
}
