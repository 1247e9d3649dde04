using GpuAnomaly.Kernels.Cpu;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAnomaly.Kernels.Pool;

/// <summary>
/// MaxPool2d / AvgPool2d for the `cpu` device: managed SIMD, multi-threaded.
/// The window is separable: each output row first reduces its KH input rows column by
/// column into a padded row buffer (vectorized over W for any stride), then reduces KW
/// columns of that buffer per output (vectorized over OutW when the stride is 1, the
/// dense-extraction case; deinterleaved with AVX2 when it is 2; scalar otherwise). The buffer's border holds the padding value
/// (-inf for max, 0 for avg), so the inner loops have no bounds checks.
/// </summary>
public static unsafe class Pool2dCpu
{
    /// <summary>Below this many outputs one thread is faster than waking the pool.</summary>
    private const long ParallelMinOutputs = 1 << 14;

    /// <param name="x">[N, C, H, W].</param>
    /// <param name="y">[N, C, OutH, OutW], every element written.</param>
    public static void Forward(in Pool2dParams p, ReadOnlySpan<float> x, Span<float> y)
    {
        p.Validate();
        if (x.Length != p.InputElements || y.Length != p.OutputElements)
            throw new ArgumentException($"pool2d: input has {x.Length} elements (expected {p.InputElements}), " +
                                        $"output {y.Length} (expected {p.OutputElements}) for {p}");
        fixed (float* px = x, py = y)
        {
            if (p.Kind == PoolKind.Max) Run<MaxOp>(p, px, py, null);
            else Run<SumOp>(p, px, py, p.CountIncludePad != 0 ? null : ColumnCounts(p));
        }
    }

    /// <summary>For avg pooling without padding counted: in-bounds columns of each output column's window.</summary>
    private static float[] ColumnCounts(in Pool2dParams p)
    {
        var counts = new float[p.OutW];
        for (int ox = 0; ox < counts.Length; ox++)
            for (int kx = 0; kx < p.KW; kx++)
                if ((uint)(ox * p.StrideW - p.PadW + kx * p.DilW) < (uint)p.W) counts[ox]++;
        return counts;
    }

    private static void Run<TOp>(Pool2dParams p, float* x, float* y, float[]? colCounts) where TOp : struct, IReduce
    {
        int rows = p.N * p.C * p.OutH;
        int threads = CpuParallel.Threads;
        bool max2x2 = IsDenseMax2x2(p);
        if (threads == 1 || p.OutputElements < ParallelMinOutputs)
        {
            if (max2x2) Max2x2Rows(p, x, y, 0, rows);
            else Rows<TOp>(p, x, y, 0, rows, colCounts);
            return;
        }
        // Chunks of whole output rows (not planes) so that a single large plane still spreads over every core.
        int chunks = Math.Min(rows, threads * 4);
        if (max2x2) CpuParallel.For(0, chunks, i => Max2x2Rows(p, x, y, (int)((long)rows * i / chunks), (int)((long)rows * (i + 1) / chunks)));
        else CpuParallel.For(0, chunks, i => Rows<TOp>(p, x, y, (int)((long)rows * i / chunks), (int)((long)rows * (i + 1) / chunks), colCounts));
    }

    /// <summary>
    /// The dense-extraction pool of the Uninformed Students networks (MaxPool2d(2, stride 1, dilation d), no padding),
    /// 20 of the default model's 75 nodes: one pass of four loads and three maxes per 16 outputs, no row buffer.
    /// </summary>
    private static bool IsDenseMax2x2(in Pool2dParams p) =>
        p.Kind == PoolKind.Max && p.KH == 2 && p.KW == 2 && p.StrideH == 1 && p.StrideW == 1 && p.PadH == 0 && p.PadW == 0
        && Vector512.IsHardwareAccelerated && p.OutW >= Vector512<float>.Count;

    /// <summary>
    /// y[oy, ox] = max(x[oy, ox], x[oy, ox + dw], x[oy + dh, ox], x[oy + dh, ox + dw]) for output rows [r0, r1); the
    /// row's last vector is placed to end at its last output (it rewrites a few outputs with the same values).
    /// Vector512.Max propagates NaN, as PyTorch's max pooling does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Max2x2Rows(in Pool2dParams p, float* x, float* y, int r0, int r1)
    {
        int oh = p.OutH, ow = p.OutW, w = p.W, dh = p.DilH, dw = p.DilW, lanes = Vector512<float>.Count;
        for (int r = r0; r < r1; r++)
        {
            int plane = r / oh, oy = r - plane * oh;
            float* top = x + ((long)plane * p.H + oy) * w, bottom = top + (long)dh * w, yRow = y + (long)r * ow;
            for (int ox = 0; ; ox += lanes)
            {
                if (ox > ow - lanes) ox = ow - lanes;
                var m = Vector512.Max(Vector512.Max(Vector512.Load(top + ox), Vector512.Load(top + ox + dw)),
                                      Vector512.Max(Vector512.Load(bottom + ox), Vector512.Load(bottom + ox + dw)));
                m.Store(yRow + ox);
                if (ox == ow - lanes) break;
            }
        }
    }

    private static void Rows<TOp>(in Pool2dParams p, float* x, float* y, int rowStart, int rowEnd, float[]? colCounts)
        where TOp : struct, IReduce
    {
        int h = p.H, w = p.W, oh = p.OutH, ow = p.OutW, pw = p.PadW;
        // Slack past the right border: the stride-2 path loads 16 floats to keep 8.
        float[] buffer = new float[w + 2 * pw + 8];
        buffer.AsSpan().Fill(TOp.Identity); // the border keeps the padding value; the middle is rewritten per row
        bool avg = typeof(TOp) == typeof(SumOp);
        float kernelArea = p.KH * p.KW;
        fixed (float* cb = buffer)
        fixed (float* counts = colCounts)
        {
            float* mid = cb + pw;
            for (int r = rowStart; r < rowEnd; r++)
            {
                int plane = r / oh, oy = r - plane * oh;
                float* xPlane = x + (long)plane * h * w;
                float* yRow = y + (long)r * ow;

                // Vertical: reduce the in-bounds input rows of this output row's window.
                // The first two rows are combined straight into the buffer (no copy first).
                int validRows = 0;
                float* first = null;
                for (int ky = 0; ky < p.KH; ky++)
                {
                    int iy = oy * p.StrideH - p.PadH + ky * p.DilH;
                    if ((uint)iy >= (uint)h) continue;
                    float* row = xPlane + (long)iy * w;
                    if (++validRows == 1) first = row;
                    else CombineRows<TOp>(mid, validRows == 2 ? first : mid, row, w);
                }
                if (validRows == 1) new ReadOnlySpan<float>(first, w).CopyTo(new Span<float>(mid, w));
                // Only a dilated max window can miss every input row; PyTorch gives -inf there.
                else if (validRows == 0) new Span<float>(mid, w).Fill(TOp.Identity);

                // Horizontal: buffer index of (ox, kx) is ox * StrideW + kx * DilW.
                float rowDivisor = avg ? (counts == null ? kernelArea : validRows) : 1f;
                int ox = 0;
                if (p.StrideW == 1)
                {
                    var vDivisor = new Vector<float>(rowDivisor);
                    for (; ox <= ow - Vector<float>.Count; ox += Vector<float>.Count)
                    {
                        var acc = Vector.Load(cb + ox);
                        for (int kx = 1; kx < p.KW; kx++) acc = TOp.Apply(acc, Vector.Load(cb + ox + kx * p.DilW));
                        if (avg) acc /= counts == null ? vDivisor : vDivisor * Vector.Load(counts + ox);
                        acc.Store(yRow + ox);
                    }
                }
                else if (p.StrideW == 2 && Avx2.IsSupported)
                {
                    // MaxPool2d(2) and the 3x3 stride-2 stem: deinterleave instead of a scalar loop.
                    var vDivisor = Vector256.Create(rowDivisor);
                    for (; ox <= ow - 8; ox += 8)
                    {
                        var acc = Evens(cb + 2 * ox);
                        for (int kx = 1; kx < p.KW; kx++) acc = TOp.Apply(acc, Evens(cb + 2 * ox + kx * p.DilW));
                        acc = Avx2.Permute4x64(acc.AsDouble(), 0b11_01_10_00).AsSingle();
                        if (avg) acc /= counts == null ? vDivisor : vDivisor * Vector256.Load(counts + ox);
                        acc.Store(yRow + ox);
                    }
                }
                for (; ox < ow; ox++)
                {
                    float* start = cb + ox * p.StrideW;
                    float acc = start[0];
                    for (int kx = 1; kx < p.KW; kx++) acc = TOp.Apply(acc, start[kx * p.DilW]);
                    if (avg) acc /= counts == null ? rowDivisor : rowDivisor * counts[ox];
                    yRow[ox] = acc;
                }
            }
        }
    }

    /// <summary>
    /// The even elements of p[0..16), lane-interleaved as (p0 p2 p8 p10 | p4 p6 p12 p14).
    /// Elementwise ops keep that order, so one Permute4x64(0b11_01_10_00) after the last tap
    /// restores p0 p2 p4 ... p14.
    /// </summary>
    private static Vector256<float> Evens(float* p) => Avx.Shuffle(Vector256.Load(p), Vector256.Load(p + 8), 0b10_00_10_00);

    /// <summary>dst = op(a, b) elementwise; dst may be a.</summary>
    private static void CombineRows<TOp>(float* dst, float* a, float* b, int n) where TOp : struct, IReduce
    {
        int i = 0;
        for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            TOp.Apply(Vector.Load(a + i), Vector.Load(b + i)).Store(dst + i);
        for (; i < n; i++) dst[i] = TOp.Apply(a[i], b[i]);
    }

    private interface IReduce
    {
        static abstract float Identity { get; }
        static abstract float Apply(float a, float b);
        static abstract Vector<float> Apply(Vector<float> a, Vector<float> b);
        static abstract Vector256<float> Apply(Vector256<float> a, Vector256<float> b);
    }

    /// <summary>Max with NaN propagating (as PyTorch's max pooling does).</summary>
    private struct MaxOp : IReduce
    {
        public static float Identity => float.NegativeInfinity;
        public static float Apply(float a, float b) => MathF.Max(a, b);
        public static Vector<float> Apply(Vector<float> a, Vector<float> b) => Vector.Max(a, b);
        public static Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    }

    private struct SumOp : IReduce
    {
        public static float Identity => 0f;
        public static float Apply(float a, float b) => a + b;
        public static Vector<float> Apply(Vector<float> a, Vector<float> b) => a + b;
        public static Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a + b;
    }
}
