namespace GpuAnomaly.Engine;

/// <summary>
/// ONNX MaxPool / AveragePool over any number of spatial axes with per-axis kernel, stride, dilation and begin / end pads,
/// ceil_mode and count_include_pad: the cases the engine's square, symmetric <see cref="Pool2dOp"/> does not take.
/// </summary>
public sealed partial class PoolNdOp(bool max, int[] kernel, int[] strides, int[] dilations, int[] padBegin, int[] padEnd, bool ceilMode, bool countIncludePad)
    : HostKernelOp
{
    public bool Max { get; } = max;
    public override string Kind => Max ? "max_pool_nd" : "avg_pool_nd";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        int sp = kernel.Length;
        if (x.Rank != sp + 2 || strides.Length != sp || dilations.Length != sp || padBegin.Length != sp || padEnd.Length != sp)
            throw new ArgumentException($"a {sp}-D pool over {x}");
        var d = new int[x.Rank];
        d[0] = x[0];
        d[1] = x[1];
        for (int i = 0; i < sp; i++)
        {
            long span = (long)(kernel[i] - 1) * dilations[i] + 1, room = x[i + 2] + padBegin[i] + padEnd[i] - span;
            if (kernel[i] < 1 || strides[i] < 1 || dilations[i] < 1 || room < 0) throw new ArgumentException($"pool window {kernel[i]} does not fit axis {i + 2} of {x}");
            long o = (ceilMode ? (room + strides[i] - 1) / strides[i] : room / strides[i]) + 1;
            // As PyTorch and onnx: the last window must start inside the input or its begin padding.
            if (ceilMode && (o - 1) * strides[i] >= x[i + 2] + padBegin[i]) o--;
            d[i + 2] = checked((int)o);
        }
        return new Shape(d);
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        var xd = dims[0];
        int sp = kernel.Length;
        long inPlane = 1, outPlane = 1;
        for (int i = 0; i < sp; i++)
        {
            inPlane *= xd[i + 2];
            outPlane *= yDims[i + 2];
        }
        var xs2 = NdIndex.Strides(xd.AsSpan(2));
        var o = new int[sp];
        var w = new int[sp];
        long windowSize = 1;
        foreach (int k in kernel) windowSize *= k;
        for (long plane = 0; plane < (long)xd[0] * xd[1]; plane++)
        {
            Array.Clear(o);
            for (long j = 0; j < outPlane; j++)
            {
                T acc = Max ? T.NegativeInfinity : T.Zero;
                long count = 0, padded = 0;
                Array.Clear(w);
                for (long t = 0; t < windowSize; t++)
                {
                    long off = 0;
                    bool inside = true, inPad = true;
                    for (int a = 0; a < sp; a++)
                    {
                        long p = (long)o[a] * strides[a] - padBegin[a] + (long)w[a] * dilations[a];
                        if (p < 0 || p >= xd[a + 2]) inside = false;
                        if (p < -padBegin[a] || p >= xd[a + 2] + padEnd[a]) inPad = false;
                        off += p * xs2[a];
                    }
                    if (inPad) padded++;
                    if (inside)
                    {
                        T v = x[(int)(plane * inPlane + off)];
                        acc = Max ? (T.IsNaN(v) || v > acc ? v : acc) : acc + v;
                        count++;
                    }
                    for (int a = sp - 1; a >= 0 && ++w[a] == kernel[a]; a--) w[a] = 0;
                }
                y[(int)(plane * outPlane + j)] = Max ? acc : acc / T.CreateTruncating(countIncludePad ? padded : count);
                for (int a = sp - 1; a >= 0 && ++o[a] == yDims[a + 2]; a--) o[a] = 0;
            }
        }
    }

    public override string ToString() =>
        $"{Kind}(k=[{string.Join(",", kernel)}] s=[{string.Join(",", strides)}] d=[{string.Join(",", dilations)}] " +
        $"pads=[{string.Join(",", padBegin)}|{string.Join(",", padEnd)}] ceil={ceilMode} countIncludePad={countIncludePad})";
}
