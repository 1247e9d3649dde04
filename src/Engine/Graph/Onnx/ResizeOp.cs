using GpuAnomaly.Kernels.Resize;

namespace GpuAnomaly.Engine;

/// <summary>The attributes of an ONNX Resize that do not depend on the axis.</summary>
public sealed record ResizeOptions(ResizeMode Mode, ResizeCoordinate Coordinate, ResizeNearest Nearest = ResizeNearest.RoundPreferFloor,
    double CubicA = -0.75, bool ExcludeOutside = false, float Extrapolation = 0f);

/// <summary>
/// ONNX Resize (and Upsample) over any rank: per axis the output size, the scale its coordinates use, and for
/// tf_crop_and_resize the roi (start, end as fractions of the input). The interpolation is separable: an output
/// element is the sum over the product of the axes' taps (<see cref="ResizeMath"/>). cpu over any rank; ILGPU up to
/// rank 4 (<see cref="ResizeGpu"/>).
/// </summary>
public sealed class ResizeOp : HostKernelOp
{
    private readonly int[] _sizes;
    private readonly double[] _scales;
    private readonly double[] _roi;

    public ResizeOp(int[] sizes, double[] scales, ResizeOptions options, double[]? roi = null)
    {
        if (scales.Length != sizes.Length || roi is not null && roi.Length != 2 * sizes.Length)
            throw new ArgumentException($"resize of {sizes.Length} sizes with {scales.Length} scales and {roi?.Length ?? 0} roi values");
        if (scales.Any(s => !(s > 0) || double.IsInfinity(s))) throw new ArgumentException($"resize scales [{string.Join(", ", scales)}] must be positive");
        _sizes = sizes;
        _scales = scales;
        _roi = roi ?? [.. Enumerable.Repeat(0.0, sizes.Length), .. Enumerable.Repeat(1.0, sizes.Length)];
        Options = options;
    }

    public ResizeOptions Options { get; }
    public IReadOnlyList<int> Sizes => _sizes;
    public IReadOnlyList<double> Scales => _scales;
    public override string Kind => "resize";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 1, 1);
        var x = inputs[0];
        if (x.Rank != _sizes.Length) throw new ArgumentException($"a resize of rank {_sizes.Length} applied to {x}");
        for (int a = 0; a < x.Rank; a++)
            if (x[a] == 0 && _sizes[a] > 0) throw new ArgumentException($"resize of the empty axis {a} of {x}");
        return new Shape(_sizes);
    }

    /// <summary>Per axis and output index: up to 4 taps (input offset along the axis times its stride, weight), zero weights dropped.</summary>
    private (long[][] Offset, double[][] Weight, int[][] Count, bool[][] Outside) Taps(int[] xd)
    {
        int rank = xd.Length, taps = ResizeMath.Taps((int)Options.Mode), mode = (int)Options.Mode, coord = (int)Options.Coordinate;
        var strides = NdIndex.Strides(xd);
        var off = new long[rank][];
        var w = new double[rank][];
        var cnt = new int[rank][];
        var outside = new bool[rank][];
        for (int a = 0; a < rank; a++)
        {
            int n = _sizes[a];
            (off[a], w[a], cnt[a], outside[a]) = (new long[n * 4], new double[n * 4], new int[n], new bool[n]);
            double len = _scales[a] * xd[a];
            for (int o = 0; o < n; o++)
            {
                double xo = ResizeMath.Original(coord, o, xd[a], n, _scales[a], len, _roi[a], _roi[a + rank]);
                outside[a][o] = ResizeMath.Extrapolates(coord, xo, xd[a]);
                int first = ResizeMath.First(mode, (int)Options.Nearest, xo);
                bool excludes = ResizeMath.Excludes(mode, Options.ExcludeOutside, first, xd[a]);
                double inside = ResizeMath.InsideSum(mode, excludes, xo, first, xd[a], Options.CubicA);
                for (int t = 0; t < taps; t++)
                {
                    int p = first + t;
                    if (excludes && (p < 0 || p >= xd[a])) continue;
                    double wt = ResizeMath.Weight(mode, xo, t, Options.CubicA) / inside;
                    if (wt == 0) continue;
                    int k = o * 4 + cnt[a][o]++;
                    off[a][k] = ResizeMath.Clamp(p, xd[a]) * strides[a];
                    w[a][k] = wt;
                }
            }
        }
        return (off, w, cnt, outside);
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var x = xs(0);
        int rank = yDims.Length;
        if (y.Length == 0) return;
        if (rank == 0)
        {
            y[0] = x[0];
            return;
        }
        var (off, w, cnt, outside) = Taps(dims[0]);
        var o = new int[rank];
        var t = new int[rank];
        T extrapolation = T.CreateTruncating(Options.Extrapolation);
        for (long i = 0; i < y.Length; i++)
        {
            bool ext = false;
            for (int a = 0; a < rank; a++) ext |= outside[a][o[a]];
            T sum = T.Zero;
            if (!ext)
            {
                // The odometer over the taps of every axis (an axis of 0 taps cannot happen: weights sum to 1).
                Array.Clear(t);
                while (true)
                {
                    long p = 0;
                    T wt = T.One;
                    for (int a = 0; a < rank; a++)
                    {
                        int k = o[a] * 4 + t[a];
                        p += off[a][k];
                        wt *= T.CreateTruncating(w[a][k]);
                    }
                    sum += wt * x[(int)p];
                    int b = rank - 1;
                    for (; b >= 0 && ++t[b] == cnt[b][o[b]]; b--) t[b] = 0;
                    if (b < 0) break;
                }
            }
            y[(int)i] = ext ? extrapolation : sum;
            for (int a = rank - 1; a >= 0 && ++o[a] == yDims[a]; a--) o[a] = 0;
        }
    }

    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var xd = inputs[0].Shape.Dims.ToArray();
        int rank = xd.Length, lead = 0;
        // Leading identity axes (batch, channels) merge into one, so a 3-D (5-axis) resize fits the 4-axis kernel.
        while (rank - lead > ResizeGpu.MaxRank && IsIdentity(xd, lead) && IsIdentity(xd, lead + 1)) lead++;
        if (rank - lead > ResizeGpu.MaxRank) return false;
        if (lead > 0)
        {
            int merged = xd[..(lead + 1)].Aggregate(1, (a, b) => checked(a * b));
            var op = new ResizeOp([merged, .. _sizes[(lead + 1)..]], [1.0, .. _scales[(lead + 1)..]], Options,
                [0.0, .. _roi[(lead + 1)..rank], 1.0, .. _roi[(rank + lead + 1)..]]);
            return op.RunIlgpu(device, [inputs[0].Reshape(new Shape([merged, .. xd[(lead + 1)..]]))], output);
        }
        // Right-aligned to 4 axes; the leading ones are size-1 identities (nearest, scale 1).
        Span<int> inn = stackalloc int[4], outn = stackalloc int[4];
        Span<double> sc = stackalloc double[4], len = stackalloc double[4], ra = stackalloc double[4], rb = stackalloc double[4];
        inn.Fill(1); outn.Fill(1); sc.Fill(1); len.Fill(1); ra.Fill(0); rb.Fill(1);
        for (int a = 0, k = 4 - rank; a < rank; a++, k++)
            (inn[k], outn[k], sc[k], len[k], ra[k], rb[k]) = (xd[a], _sizes[a], _scales[a], _scales[a] * xd[a], _roi[a], _roi[a + rank]);
        var axes = new ResizeAxes
        {
            In0 = inn[0], In1 = inn[1], In2 = inn[2], In3 = inn[3], Out0 = outn[0], Out1 = outn[1], Out2 = outn[2], Out3 = outn[3],
            Scale0 = sc[0], Scale1 = sc[1], Scale2 = sc[2], Scale3 = sc[3], Len0 = len[0], Len1 = len[1], Len2 = len[2], Len3 = len[3],
            RoiA0 = ra[0], RoiA1 = ra[1], RoiA2 = ra[2], RoiA3 = ra[3], RoiB0 = rb[0], RoiB1 = rb[1], RoiB2 = rb[2], RoiB3 = rb[3],
        };
        var attrs = new ResizeAttributes
        {
            Mode = (int)Options.Mode, Coordinate = (int)Options.Coordinate, Nearest = (int)Options.Nearest,
            ExcludeOutside = Options.ExcludeOutside ? 1 : 0, CubicA = Options.CubicA, Extrapolation = Options.Extrapolation,
        };
        ResizeGpu.For(device.Accelerator).Forward(axes, attrs, inputs[0].View<float>(), output.View<float>());
        return true;
    }

    /// <summary>Whether axis a maps output i to input i with weight 1 (so it can merge with its neighbour).</summary>
    private bool IsIdentity(int[] xd, int a) =>
        _sizes[a] == xd[a] && _scales[a] == 1 && Options.Coordinate is not (ResizeCoordinate.TfHalfPixelForNn or ResizeCoordinate.TfCropAndResize);

    public override string ToString() =>
        $"resize({Options.Mode}, {Options.Coordinate}, sizes=[{string.Join(",", _sizes)}] scales=[{string.Join(",", _scales.Select(s => s.ToString("G6")))}])";
}
