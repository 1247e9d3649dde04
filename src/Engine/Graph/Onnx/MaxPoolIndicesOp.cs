namespace GpuAnomaly.Engine;

/// <summary>
/// MaxPool's Indices output: per window, the flattened index of its (first) maximum in the unpadded input,
/// batch and channel included (so in [0, N*C*D1*...*Dn)), as ONNX and PyTorch's return_indices. With storage_order 1
/// the spatial part is column-major (the last spatial axis varies slowest), the batch * channel part stays outermost.
/// The values are integers carried in float (exact up to 2^24; the importer checks the range).
/// </summary>
public sealed partial class MaxPoolIndicesOp(int[] kernel, int[] strides, int[] dilations, int[] padBegin, int[] padEnd, bool ceilMode, int storageOrder)
    : HostKernelOp
{
    private readonly PoolNdOp _shape = new(true, kernel, strides, dilations, padBegin, padEnd, ceilMode, false);
    public int StorageOrder { get; } = storageOrder is 0 or 1 ? storageOrder : throw new ArgumentException($"storage_order {storageOrder} (0 or 1)");
    public override string Kind => "max_pool_indices";

    public override Shape InferShape(IReadOnlyList<Shape> inputs) => _shape.InferShape(inputs);

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
        var rowMajor = NdIndex.Strides(xd.AsSpan(2));
        // The strides the reported index uses: row-major, or column-major for storage_order 1.
        var reported = rowMajor;
        if (StorageOrder == 1)
        {
            reported = new long[sp];
            for (int a = 0, s = 1; a < sp; s *= xd[a + 2], a++) reported[a] = s;
        }
        var o = new int[sp];
        var w = new int[sp];
        long windowSize = 1;
        foreach (int k in kernel) windowSize *= k;
        for (long plane = 0; plane < (long)xd[0] * xd[1]; plane++)
        {
            Array.Clear(o);
            for (long j = 0; j < outPlane; j++)
            {
                T best = T.NegativeInfinity;
                long at = -1;
                Array.Clear(w);
                for (long t = 0; t < windowSize; t++)
                {
                    long off = 0, rep = 0;
                    bool inside = true;
                    for (int a = 0; a < sp; a++)
                    {
                        long p = (long)o[a] * strides[a] - padBegin[a] + (long)w[a] * dilations[a];
                        if (p < 0 || p >= xd[a + 2]) inside = false;
                        off += p * rowMajor[a];
                        rep += p * reported[a];
                    }
                    if (inside)
                    {
                        T v = x[(int)(plane * inPlane + off)];
                        // The first maximum wins ties (strictly greater replaces), as ONNX's reference and PyTorch.
                        if (at < 0 || v > best)
                        {
                            best = v;
                            at = rep;
                        }
                    }
                    for (int a = sp - 1; a >= 0 && ++w[a] == kernel[a]; a--) w[a] = 0;
                }
                y[(int)(plane * outPlane + j)] = T.CreateTruncating(plane * inPlane + Math.Max(at, 0));
                for (int a = sp - 1; a >= 0 && ++o[a] == yDims[a + 2]; a--) o[a] = 0;
            }
        }
    }

    public override string ToString() => $"{Kind}({_shape}, storage_order={StorageOrder})";
}
