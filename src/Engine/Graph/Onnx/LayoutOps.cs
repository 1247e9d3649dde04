namespace GpuAnomaly.Engine;

/// <summary>Transpose by a permutation of the axes.</summary>
public sealed partial class TransposeOp(int[] perm) : HostKernelOp
{
    public IReadOnlyList<int> Perm { get; } = perm;
    public override string Kind => "transpose";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (Perm.Count != x.Rank || Perm.Distinct().Count() != x.Rank || Perm.Any(p => p < 0 || p >= x.Rank))
            throw new ArgumentException($"perm [{string.Join(", ", Perm)}] is not a permutation of the axes of {x}");
        return ShapeOf(Perm.Select(p => x[p]).ToArray());
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) => NdLayout.Transpose(x(0), dims[0], [.. Perm], y);

    public override string ToString() => $"transpose([{string.Join(", ", Perm)}])";
}

/// <summary>Concat along an axis (non-negative).</summary>
public sealed partial class ConcatOp(int axis) : HostKernelOp
{
    public int Axis { get; } = axis;
    public override string Kind => "concat";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        if (inputs.Count < 1) throw new ArgumentException("concat takes at least one input");
        var dims = inputs[0].Dims.ToArray();
        if (Axis >= dims.Length) throw new ArgumentException($"axis {Axis} is out of range for {inputs[0]}");
        for (int k = 1; k < inputs.Count; k++)
        {
            var s = inputs[k];
            if (s.Rank != dims.Length || Enumerable.Range(0, dims.Length).Any(i => i != Axis && s[i] != dims[i]))
                throw new ArgumentException($"concat along axis {Axis}: {s} does not match {inputs[0]}");
            dims[Axis] += s[Axis];
        }
        return new Shape(dims);
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) => NdLayout.Concat(x, dims, Axis, y);

    public override string ToString() => $"concat(axis={Axis})";
}

/// <summary>A strided slice: per axis a clamped start, a step and the output length (ONNX Slice after normalization).</summary>
public sealed partial class SliceOp(long[] starts, long[] steps, int[] lengths) : HostKernelOp
{
    public IReadOnlyList<long> Starts { get; } = starts;
    public IReadOnlyList<long> Steps { get; } = steps;
    public IReadOnlyList<int> Lengths { get; } = lengths;
    public override string Kind => "slice";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (x.Rank != Starts.Count) throw new ArgumentException($"slice of rank {Starts.Count} applied to {x}");
        for (int i = 0; i < x.Rank; i++)
        {
            long last = Starts[i] + (Lengths[i] - 1) * Steps[i];
            if (Lengths[i] > 0 && (Starts[i] < 0 || Starts[i] >= x[i] || last < 0 || last >= x[i]))
                throw new ArgumentException($"slice axis {i} (start {Starts[i]}, step {Steps[i]}, {Lengths[i]} elements) leaves {x}");
        }
        return ShapeOf([.. Lengths]);
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) =>
        NdLayout.Slice(x(0), dims[0], [.. Starts], [.. Steps], y, yDims);
}

/// <summary>Pad with a constant (or edge / reflect / wrap, <see cref="NdPad"/>); <c>Begin</c> / <c>End</c> per axis, negative crops.</summary>
public sealed partial class PadOp(long[] begin, long[] end, float value, PadMode mode = PadMode.Constant) : HostKernelOp
{
    public IReadOnlyList<long> Begin { get; } = begin;
    public IReadOnlyList<long> End { get; } = end;
    public float Value { get; } = value;
    public PadMode Mode { get; } = mode;
    public override string Kind => "pad";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (Begin.Count != x.Rank || End.Count != x.Rank) throw new ArgumentException($"{Begin.Count} pads for {x}");
        var d = new int[x.Rank];
        for (int i = 0; i < x.Rank; i++)
        {
            long n = x[i] + Begin[i] + End[i];
            if (n < 0) throw new ArgumentException($"pads ({Begin[i]}, {End[i]}) remove more than axis {i} of {x}");
            if (Mode != PadMode.Constant && x[i] == 0 && n > 0) throw new ArgumentException($"pad mode {Mode} of the empty axis {i} of {x}");
            d[i] = checked((int)n);
        }
        return new Shape(d);
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims)
    {
        if (Mode == PadMode.Constant) NdLayout.Pad(x(0), dims[0], [.. Begin], T.CreateTruncating(Value), y, yDims);
        else NdPad.Pad(x(0), dims[0], [.. Begin], Mode, y, yDims);
    }
}

/// <summary>Gather with constant indices (made non-negative at import) along an axis.</summary>
public sealed partial class GatherOp(int axis, long[] indices, int[] indicesDims) : HostKernelOp
{
    public int Axis { get; } = axis;
    public IReadOnlyList<long> Indices { get; } = indices;
    public IReadOnlyList<int> IndicesDims { get; } = indicesDims;
    public override string Kind => "gather";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (Axis >= x.Rank) throw new ArgumentException($"axis {Axis} is out of range for {x}");
        if (Indices.Any(i => i < 0 || i >= x[Axis])) throw new ArgumentException($"an index is out of range for axis {Axis} of {x}");
        var d = new List<int>();
        for (int i = 0; i < Axis; i++) d.Add(x[i]);
        d.AddRange(IndicesDims);
        for (int i = Axis + 1; i < x.Rank; i++) d.Add(x[i]);
        return ShapeOf(d);
    }

    protected override void Compute<T>(InputSpan<T> x, int[][] dims, Span<T> y, int[] yDims) =>
        NdLayout.Take(x(0), dims[0], Axis, [.. Indices], y);
}
