namespace GpuAnomaly.Engine;

/// <summary>Tile: the input repeated along each axis (y[i] = x[i mod d] per axis).</summary>
public sealed partial class TileOp(int[] repeats) : HostKernelOp
{
    public IReadOnlyList<int> Repeats { get; } = repeats;
    public override string Kind => "tile";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (Repeats.Count != x.Rank || Repeats.Any(r => r < 0)) throw new ArgumentException($"tile repeats [{string.Join(", ", Repeats)}] for {x}");
        return new Shape(x.Dims.ToArray().Select((d, a) => checked(d * Repeats[a])).ToArray());
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        var xd = dims[0];
        var sx = NdIndex.Strides(xd);
        var o = new int[yDims.Length];
        for (int i = 0; i < y.Length; i++)
        {
            long off = 0;
            for (int a = 0; a < o.Length; a++) off += o[a] % xd[a] * sx[a];
            y[i] = x[(int)off];
            for (int a = o.Length - 1; a >= 0 && ++o[a] == yDims[a]; a--) o[a] = 0;
        }
    }

    public override string ToString() => $"{Kind}([{string.Join(", ", Repeats)}])";
}

/// <summary>Trilu: keeps the upper (j - i &gt;= k) or lower (j - i &lt;= k) triangle of the last two axes, zeros the rest.</summary>
public sealed partial class TriluOp(bool upper, long k) : HostKernelOp
{
    public bool Upper { get; } = upper;
    public long K { get; } = k;
    public override string Kind => Upper ? "triu" : "tril";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        if (inputs[0].Rank < 2) throw new ArgumentException($"trilu of {inputs[0]} (rank >= 2)");
        return inputs[0];
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        int rows = yDims[^2], cols = yDims[^1];
        for (int i = 0; i < y.Length; i++)
        {
            long r = i / cols % rows, c = i % cols;
            y[i] = (Upper ? c - r >= K : c - r <= K) ? x[i] : T.Zero;
        }
    }

    public override string ToString() => $"{Kind}(k={K})";
}

/// <summary>CumSum along an axis, exclusive (each sum leaves its own element out) and / or reverse.</summary>
public sealed partial class CumSumOp(int axis, bool exclusive, bool reverse) : HostKernelOp
{
    public int Axis { get; } = axis;
    public override string Kind => "cumsum";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        if (Axis < 0 || Axis >= inputs[0].Rank) throw new ArgumentException($"cumsum over axis {Axis} of {inputs[0]}");
        return inputs[0];
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        var (outer, n, inner) = NdIndex.Split(dims[0], Axis);
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                T acc = T.Zero;
                for (int j = 0; j < n; j++)
                {
                    int k = reverse ? n - 1 - j : j;
                    int p = (int)((o * n + k) * inner + i);
                    if (exclusive) { y[p] = acc; acc += x[p]; }
                    else { acc += x[p]; y[p] = acc; }
                }
            }
    }

    public override string ToString() => $"{Kind}(axis={Axis}, exclusive={exclusive}, reverse={reverse})";
}

/// <summary>Hardmax along an axis: 1 at the first maximum, 0 elsewhere.</summary>
public sealed partial class HardmaxOp(int axis) : HostKernelOp
{
    public int Axis { get; } = axis;
    public override string Kind => "hardmax";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        if (Axis < 0 || Axis >= inputs[0].Rank) throw new ArgumentException($"hardmax over axis {Axis} of {inputs[0]}");
        return inputs[0];
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        var (outer, n, inner) = NdIndex.Split(dims[0], Axis);
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                int at = 0;
                long b = o * n * inner + i;
                for (int k = 1; k < n; k++)
                    if (x[(int)(b + k * inner)] > x[(int)(b + at * inner)]) at = k;
                for (int k = 0; k < n; k++) y[(int)(b + k * inner)] = k == at ? T.One : T.Zero;
            }
    }

    public override string ToString() => $"{Kind}(axis={Axis})";
}

/// <summary>Shrink: x + bias below -lambd, x - bias above lambd, 0 between.</summary>
public sealed partial class ShrinkOp(float lambd, float bias) : HostKernelOp
{
    public override string Kind => "shrink";
    public override bool CanRunInPlace => true;

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        return inputs[0];
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        T l = T.CreateTruncating(lambd), b = T.CreateTruncating(bias);
        for (int i = 0; i < y.Length; i++) y[i] = x[i] < -l ? x[i] + b : x[i] > l ? x[i] - b : T.Zero;
    }

    public override string ToString() => $"{Kind}({lambd}, {bias})";
}

/// <summary>IsNaN / IsInf (detect_negative, detect_positive) as 0 / 1: a BOOL result, so it folds at import only.</summary>
public sealed class FloatClassOp(bool nan, bool negative = true, bool positive = true) : HostKernelOp
{
    public override string Kind => nan ? "isnan" : "isinf";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        return inputs[0];
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        for (int i = 0; i < y.Length; i++)
        {
            T v = x[i];
            bool hit = nan ? T.IsNaN(v) : (negative && T.IsNegativeInfinity(v)) || (positive && T.IsPositiveInfinity(v));
            y[i] = hit ? T.One : T.Zero;
        }
    }
}
