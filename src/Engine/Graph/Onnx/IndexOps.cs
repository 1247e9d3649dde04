namespace GpuAnomaly.Engine;

/// <summary>
/// ArgMax / ArgMin along an axis (keepdims, select_last_index): the index as an integer carried in float (exact up to
/// 2^24; the importer checks the axis). NaN counts as the largest and the smallest value, as numpy's argmax / argmin.
/// </summary>
public sealed partial class ArgExtremeOp(bool max, int axis, bool keepDims, bool selectLast) : HostKernelOp
{
    public bool Max { get; } = max;
    public int Axis { get; } = axis;
    public bool KeepDims { get; } = keepDims;
    public bool SelectLast { get; } = selectLast;
    public override string Kind => Max ? "argmax" : "argmin";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (Axis < 0 || Axis >= x.Rank || x[Axis] == 0) throw new ArgumentException($"{Kind} over axis {Axis} of {x}");
        var d = x.Dims.ToArray().ToList();
        if (KeepDims) d[Axis] = 1;
        else d.RemoveAt(Axis);
        return ShapeOf(d);
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        var (outer, n, inner) = NdIndex.Split(dims[0], Axis);
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                long b = o * n * inner + i;
                T best = x[(int)b];
                int at = 0;
                for (int k = 1; k < n && !T.IsNaN(best); k++)
                {
                    T v = x[(int)(b + k * inner)];
                    bool better = T.IsNaN(v) || (Max ? v > best : v < best) || (SelectLast && v == best);
                    if (better) (best, at) = (v, k);
                }
                y[(int)(o * inner + i)] = T.CreateTruncating(at);
            }
    }

    public override string ToString() => $"{Kind}(axis={Axis}, keepdims={KeepDims}, select_last_index={SelectLast})";
}

/// <summary>
/// TopK along an axis: the k largest (or smallest) values in order, ties by the lower index as ONNX specifies; one op
/// per output (<see cref="Indices"/>: the indices as integers carried in float, else the values).
/// </summary>
public sealed partial class TopKOp(int axis, int k, bool largest, bool indices) : HostKernelOp
{
    public int Axis { get; } = axis;
    public int K { get; } = k;
    public bool Largest { get; } = largest;
    public bool Indices { get; } = indices;
    public override string Kind => Indices ? "topk_indices" : "topk_values";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (Axis < 0 || Axis >= x.Rank || K < 0 || K > x[Axis]) throw new ArgumentException($"top-{K} over axis {Axis} of {x}");
        var d = x.Dims.ToArray();
        d[Axis] = K;
        return new Shape(d);
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        var (outer, n, inner) = NdIndex.Split(dims[0], Axis);
        var order = new int[n];
        var vals = new T[n];
        // NaN sorts first for largest and last for smallest, as a value above every other (numpy's order).
        Comparison<int> cmp = (a, b) =>
        {
            T u = vals[a], v = vals[b];
            int c = T.IsNaN(u) || T.IsNaN(v) ? (T.IsNaN(u) ? 1 : 0) - (T.IsNaN(v) ? 1 : 0) : u.CompareTo(v);
            if (Largest) c = -c;
            return c != 0 ? c : a.CompareTo(b);
        };
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                long b = o * n * inner + i;
                for (int j = 0; j < n; j++)
                {
                    order[j] = j;
                    vals[j] = x[(int)(b + j * inner)];
                }
                Array.Sort(order, cmp);
                for (int j = 0; j < K; j++)
                    y[(int)((o * K + j) * inner + i)] = Indices ? T.CreateTruncating(order[j]) : vals[order[j]];
            }
    }

    public override string ToString() => $"{Kind}(axis={Axis}, k={K}, largest={Largest})";
}

/// <summary>
/// GatherElements: y[..., i, ...] = data[..., indices[..., i, ...], ...] along an axis; the indices are input 1
/// (integers carried in float, negative ones count from the end; an out-of-range one is an ArgumentException).
/// </summary>
public sealed partial class GatherElementsOp(int axis) : HostKernelOp
{
    public int Axis { get; } = axis;
    public override string Kind => "gather_elements";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 2);
        Shape x = inputs[0], idx = inputs[1];
        if (Axis < 0 || Axis >= x.Rank || idx.Rank != x.Rank) throw new ArgumentException($"gather_elements over axis {Axis} of {x} with indices {idx}");
        for (int a = 0; a < x.Rank; a++)
            if (a != Axis && idx[a] > x[a]) throw new ArgumentException($"gather_elements indices {idx} exceed data {x} on axis {a}");
        return idx;
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        ReadOnlySpan<T> x = xs(0), ind = xs(1);
        var xd = dims[0];
        int rank = xd.Length;
        var sx = NdIndex.Strides(xd);
        var o = new int[rank];
        for (int i = 0; i < y.Length; i++)
        {
            long v = long.CreateTruncating(ind[i]);
            if (v < 0) v += xd[Axis];
            if (v < 0 || v >= xd[Axis]) throw new ArgumentException($"gather_elements index {ind[i]} is out of range for axis {Axis} of [{string.Join(", ", xd)}]");
            long off = 0;
            for (int a = 0; a < rank; a++) off += (a == Axis ? v : o[a]) * sx[a];
            y[i] = x[(int)off];
            for (int a = rank - 1; a >= 0 && ++o[a] == yDims[a]; a--) o[a] = 0;
        }
    }

    public override string ToString() => $"{Kind}(axis={Axis})";
}

/// <summary>Where(condition, a, b) with numpy broadcasting of all three at run time (the condition as 0 / 1 in float).</summary>
public sealed partial class WhereOp : HostKernelOp
{
    public override string Kind => "where";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 3, 3);
        var d = NdIndex.Broadcast(inputs[0].Dims, inputs[1].Dims) is { } ab ? NdIndex.Broadcast(ab, inputs[2].Dims) : null;
        return d is null ? throw new ArgumentException($"where of {inputs[0]}, {inputs[1]}, {inputs[2]}: the shapes do not broadcast") : new Shape(d);
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        ReadOnlySpan<T> c = xs(0), a = xs(1), b = xs(2);
        int rank = yDims.Length;
        var s = Enumerable.Range(0, 3).Select(k => NdIndex.BroadcastStrides(dims[k], yDims)).ToArray();
        var o = new int[rank];
        for (int i = 0; i < y.Length; i++)
        {
            long pc = 0, pa = 0, pb = 0;
            for (int k = 0; k < rank; k++) (pc, pa, pb) = (pc + o[k] * s[0][k], pa + o[k] * s[1][k], pb + o[k] * s[2][k]);
            y[i] = c[(int)pc] != T.Zero ? a[(int)pa] : b[(int)pb];
            for (int k = rank - 1; k >= 0 && ++o[k] == yDims[k]; k--) o[k] = 0;
        }
    }
}
