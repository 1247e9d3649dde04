using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Transformer;

/// <summary>
/// Channels-last depthwise convolution for the `cpu` device: SIMD over channels (contiguous in both x and y), AVX-512
/// when the machine has it, else Vector256. The weights are reordered per call, into the thread's workspace (no
/// allocation), to [tap, C] so that a tap's weights for a vector of channels are one load. The output is swept one
/// vector of channels at a time over all rows: a 3x3 kernel keeps its 9 weight vectors in registers (straight-line
/// code; with padding 1 its edge columns take their two kernel columns and the rows outside the input read a zero
/// row), other kernels compute four interior pixels per weight load, and border pixels loop over their taps inside
/// the input. When C is not a multiple of the width the last vector overlaps the one before it (the same values
/// written twice); C below one vector is read and written masked. Bias is fused, GELU runs over the finished rows;
/// rows spread over the cores when the work is large.
/// </summary>
public static unsafe class DwConvCpu
{
    /// <summary>
    /// Work (multiply-adds, GELU counted as <see cref="GeluCost"/> per output) below which one thread is as fast. With
    /// Parallel.For threads lost below ~0.5e6 on 2 cores ([1, 14x14, 128] 3x3: 12 us alone, 17 us on two); on
    /// <see cref="CpuParallel"/>'s awake workers the three dwconv+GELU nodes of window_vit at batch 1 (about 1.2e6 each)
    /// gain: the whole model 0.70 -> 0.68 ms on 2 threads (median of 2000 runs, three alternations).
    /// </summary>
    private const long ParallelMinWork = 1 << 17;
    /// <summary>GELU's cost per element in multiply-adds of the convolution (about 40 vector instructions per vector).</summary>
    private const long GeluCost = 40;

    /// <summary>Tests set this to exercise the Vector256 path on an AVX-512 machine.</summary>
    internal static bool ForceVector256;

    /// <param name="bias">[C], or empty when p.HasBias == 0.</param>
    public static void Forward(in DwConvParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y)
    {
        p.CheckLengths(x.Length, w.Length, bias.Length, y.Length);
        // C below one vector: every load and store masked (a separate instantiation, so that the common case has no test per load).
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported && !ForceVector256)
        {
            if (p.C >= 16) Run<Lanes512, Vector512<float>>(p, x, w, bias, y);
            else Run<Part<Lanes512, Vector512<float>>, Vector512<float>>(p, x, w, bias, y);
        }
        else if (p.C >= 8) Run<Lanes256, Vector256<float>>(p, x, w, bias, y);
        else Run<Part<Lanes256, Vector256<float>>, Vector256<float>>(p, x, w, bias, y);
    }

    // The reordering loops, too, run optimized from the first call.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run<TL, TV>(in DwConvParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y)
        where TL : struct, ILanes<TV> where TV : struct
    {
        int taps = p.KH * p.KW, c = p.C, cPad = (c + TL.Count - 1) / TL.Count * TL.Count;
        // [tap, cPad] and then the bias row; zeros past C, which the masked loads of a C below one vector multiply.
        float* wt = Workspace.Weights((long)(taps + 1) * cPad);
        for (int t = 0; t < taps; t++)
        {
            float* row = wt + (long)t * cPad;
            for (int ch = 0; ch < c; ch++) row[ch] = w[ch * taps + t];
            for (int ch = c; ch < cPad; ch++) row[ch] = 0f;
        }
        float* biasRow = wt + (long)taps * cPad;
        for (int ch = 0; ch < cPad; ch++) biasRow[ch] = p.HasBias != 0 && ch < c ? bias[ch] : 0f;
        // A zero input row for the 3x3 sweep's kernel rows above and below the input.
        float* zeros = null;
        if (p.KH == 3 && p.KW == 3 && p.PadH > 0)
        {
            zeros = Workspace.Input((long)p.W * c);
            new Span<float>(zeros, p.W * c).Clear();
        }
        fixed (float* px = x, py = y)
        {
            int rows = p.B * p.OutH;
            long work = p.OutputElements * (taps + (p.Act == Epilogue.Gelu ? GeluCost : 0));
            if (work < ParallelMinWork || rows == 1 || CpuParallel.Threads == 1) Rows<TL, TV>(p, px, wt, cPad, zeros, py, 0, rows);
            else SpreadRows<TL, TV>(p, px, wt, cPad, zeros, py, rows);
        }
    }

    /// <summary>Rows spread over the cores through one body object per thread: warm calls allocate nothing.</summary>
    private static void SpreadRows<TL, TV>(DwConvParams p, float* x, float* wt, int cPad, float* zeros, float* y, int rows)
        where TL : struct, ILanes<TV> where TV : struct
    {
        var body = RowChunks<TL, TV>.ForThisThread;
        body.P = p;
        body.X = x;
        body.Wt = wt;
        body.CPad = cPad;
        body.Zeros = zeros;
        body.Y = y;
        body.Rows = rows;
        body.Chunks = Math.Min(rows, CpuParallel.Threads * 4);
        CpuParallel.For(0, body.Chunks, body);
    }

    private sealed class RowChunks<TL, TV> : ILoopBody where TL : struct, ILanes<TV> where TV : struct
    {
        [ThreadStatic] private static RowChunks<TL, TV>? t_instance;
        public static RowChunks<TL, TV> ForThisThread => t_instance ??= new();

        public DwConvParams P;
        public float* X, Wt, Zeros, Y;
        public int CPad, Rows, Chunks;

        public void Run(int i) =>
            Rows<TL, TV>(P, X, Wt, CPad, Zeros, Y, (int)((long)Rows * i / Chunks), (int)((long)Rows * (i + 1) / Chunks));
    }

    // Hot loops: compiled fully optimized at first call, not after tier-0 (short CLI runs never reach tier 1).
    // Each sweep is its own small method (in one large method the JIT spilled the inner loops' pointers), and takes
    // all the rows of the range for one vector of channels: its weights are loaded once, and the input lines of that
    // vector are reused by the next rows while still in L1.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows<TL, TV>(in DwConvParams p, float* x, float* wt, int cPad, float* zeros, float* y, int r0, int r1)
        where TL : struct, ILanes<TV> where TV : struct
    {
        int c = p.C, ow = p.OutW, lanes = Math.Min(c, TL.Count);
        float* bias = wt + (long)p.KH * p.KW * cPad;
        // Interior columns [oxA, oxB): every tap inside the input row.
        int oxA = Math.Min(p.PadW, ow), oxB = Math.Max(oxA, Math.Min(ow, p.W - p.KW + 1 + p.PadW));
        // A "same" 3x3 convolution: Sweep3 also takes the first and last column (oxA = 1, oxB = W - 1), no Border.
        bool k3 = p.KH == 3 && p.KW == 3, edges = k3 && p.PadW == 1 && p.W >= 2;
        for (int j = 0; j < c; j += TL.Count)
        {
            // The last vector overlaps the one before it when C is not a multiple of the width.
            int c0 = Math.Min(j, c - lanes);
            if (edges) Sweep3<TL, TV>(p, x + c0, wt + c0, cPad, zeros + c0, bias + c0, y + c0, r0, r1, oxA, oxB, true, lanes);
            else
            {
                if (oxB > oxA && k3) Sweep3<TL, TV>(p, x + c0, wt + c0, cPad, zeros + c0, bias + c0, y + c0, r0, r1, oxA, oxB, false, lanes);
                else if (oxB > oxA) Sweep<TL, TV>(p, x + c0, wt + c0, cPad, bias + c0, y + c0, r0, r1, oxA, oxB, lanes);
                if (oxA > 0 || oxB < ow) Border<TL, TV>(p, x + c0, wt + c0, cPad, bias + c0, y + c0, r0, r1, oxA, oxB, lanes);
            }
        }
        // GELU over the finished rows (in L2): one copy of the long epilogue, not one per store.
        if (p.Act == Epilogue.Gelu) GeluCpu.Range(y + (long)r0 * ow * c, y + (long)r0 * ow * c, 0, (r1 - r0) * ow * c);
    }

    /// <summary>Output row r's input row for kernel row 0 (only kernel rows ky0..ky1 lie inside the input).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* InputRow(in DwConvParams p, float* x, int r, out int ky0, out int ky1)
    {
        int b = r / p.OutH, iy = r - b * p.OutH - p.PadH;
        ky0 = Math.Max(0, -iy);
        ky1 = Math.Min(p.KH, p.H - iy);
        return x + ((long)b * p.H + iy) * p.W * p.C;
    }

    /// <summary>
    /// The interior pixels of rows r0..r1 for a 3x3 kernel, one vector of channels, and with <paramref name="edges"/>
    /// the first and last column too (padding 1: their two kernel columns inside): the 9 weight vectors stay in
    /// registers. A kernel row outside the input (the first or the last: padding is at most 1) reads the zero row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sweep3<TL, TV>(in DwConvParams p, float* x, float* w, int cPad, float* zeros, float* bias, float* y,
        int r0, int r1, int oxA, int oxB, bool edges, int lanes) where TL : struct, ILanes<TV> where TV : struct
    {
        var b = TL.Load(bias);
        TV w0 = TL.Load(w), w1 = TL.Load(w + cPad), w2 = TL.Load(w + 2 * cPad);
        TV w3 = TL.Load(w + 3 * cPad), w4 = TL.Load(w + 4 * cPad), w5 = TL.Load(w + 5 * cPad);
        TV w6 = TL.Load(w + 6 * cPad), w7 = TL.Load(w + 7 * cPad), w8 = TL.Load(w + 8 * cPad);
        int c = p.C, ow = p.OutW, n = oxB - oxA;
        long rowStride = (long)p.W * c, first = (long)(oxA - p.PadW) * c;
        for (int r = r0; r < r1; r++)
        {
            float* xr = InputRow(p, x, r, out int ky0, out int ky1) + first, yp = y + ((long)r * ow + oxA) * c;
            float* x0 = ky0 > 0 ? zeros : xr, x1 = xr + rowStride, x2 = ky1 < 3 ? zeros : xr + 2 * rowStride;
            nint s1 = c, s2 = 2 * c;
            // First column: kernel columns 1 and 2 on input columns 0 and 1 (where the interior starts).
            if (edges) TL.Store(yp - c, lanes, Two<TL, TV>(x0, x1, x2, s1, w1, w2, w4, w5, w7, w8, b, lanes));
            for (int i = 0; i < n; i++, x0 += c, x1 += c, x2 += c, yp += c)
            {
                // Two chains of multiply-adds (not one of nine): half the latency per pixel.
                var s = TL.Fma(TL.Load(x0, lanes), w0, b);
                var t = TL.Mul(TL.Load(x0 + s1, lanes), w1);
                s = TL.Fma(TL.Load(x0 + s2, lanes), w2, s);
                t = TL.Fma(TL.Load(x1, lanes), w3, t);
                s = TL.Fma(TL.Load(x1 + s1, lanes), w4, s);
                t = TL.Fma(TL.Load(x1 + s2, lanes), w5, t);
                s = TL.Fma(TL.Load(x2, lanes), w6, s);
                t = TL.Fma(TL.Load(x2 + s1, lanes), w7, t);
                s = TL.Fma(TL.Load(x2 + s2, lanes), w8, s);
                TL.Store(yp, lanes, TL.Add(s, t));
            }
            // Last column: kernel columns 0 and 1 on input columns W - 2 and W - 1 (where the interior ended).
            if (edges) TL.Store(yp, lanes, Two<TL, TV>(x0, x1, x2, s1, w0, w1, w3, w4, w6, w7, b, lanes));
        }
    }

    /// <summary>Two adjacent kernel columns of a 3x3 kernel: b + sum over rows k of x_k[0] a_k + x_k[c] e_k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Two<TL, TV>(float* x0, float* x1, float* x2, nint c, TV a0, TV e0, TV a1, TV e1, TV a2, TV e2, TV b, int lanes)
        where TL : struct, ILanes<TV> where TV : struct
    {
        var s = TL.Fma(TL.Load(x2, lanes), a2, TL.Fma(TL.Load(x1, lanes), a1, TL.Fma(TL.Load(x0, lanes), a0, b)));
        var t = TL.Fma(TL.Load(x2 + c, lanes), e2, TL.Fma(TL.Load(x1 + c, lanes), e1, TL.Mul(TL.Load(x0 + c, lanes), e0)));
        return TL.Add(s, t);
    }

    /// <summary>
    /// The interior pixels of rows r0..r1 for any kernel, one vector of channels, four pixels at a time: one weight load
    /// feeds four independent multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Sweep<TL, TV>(in DwConvParams p, float* x, float* w, int cPad, float* bias, float* y,
        int r0, int r1, int oxA, int oxB, int lanes) where TL : struct, ILanes<TV> where TV : struct
    {
        var b = TL.Load(bias);
        int c = p.C, ow = p.OutW, kw = p.KW;
        long rowStride = (long)p.W * c, first = (long)(oxA - p.PadW) * c;
        for (int r = r0; r < r1; r++)
        {
            float* xr = InputRow(p, x, r, out int ky0, out int ky1) + first, yp = y + ((long)r * ow + oxA) * c;
            int ox = oxA;
            for (; ox + 4 <= oxB; ox += 4, xr += 4 * c, yp += 4 * c)
            {
                TV a0 = b, a1 = b, a2 = b, a3 = b;
                for (int ky = ky0; ky < ky1; ky++)
                {
                    float* xp = xr + ky * rowStride, wp = w + (long)ky * kw * cPad;
                    for (int kx = 0; kx < kw; kx++, xp += c, wp += cPad)
                    {
                        var wv = TL.Load(wp);
                        a0 = TL.Fma(TL.Load(xp, lanes), wv, a0);
                        a1 = TL.Fma(TL.Load(xp + c, lanes), wv, a1);
                        a2 = TL.Fma(TL.Load(xp + 2 * c, lanes), wv, a2);
                        a3 = TL.Fma(TL.Load(xp + 3 * c, lanes), wv, a3);
                    }
                }
                TL.Store(yp, lanes, a0);
                TL.Store(yp + c, lanes, a1);
                TL.Store(yp + 2 * c, lanes, a2);
                TL.Store(yp + 3 * c, lanes, a3);
            }
            for (; ox < oxB; ox++, xr += c, yp += c)
            {
                var a = b;
                for (int ky = ky0; ky < ky1; ky++)
                {
                    float* xp = xr + ky * rowStride, wp = w + (long)ky * kw * cPad;
                    for (int kx = 0; kx < kw; kx++, xp += c, wp += cPad) a = TL.Fma(TL.Load(xp, lanes), TL.Load(wp), a);
                }
                TL.Store(yp, lanes, a);
            }
        }
    }

    /// <summary>The border columns (outside [oxA, oxB)) of rows r0..r1, one vector of channels, each over its taps inside the input.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Border<TL, TV>(in DwConvParams p, float* x, float* w, int cPad, float* bias, float* y,
        int r0, int r1, int oxA, int oxB, int lanes) where TL : struct, ILanes<TV> where TV : struct
    {
        var b = TL.Load(bias);
        int c = p.C, ow = p.OutW, kw = p.KW, width = p.W, padW = p.PadW;
        long rowStride = (long)width * c;
        for (int r = r0; r < r1; r++)
        {
            float* xr = InputRow(p, x, r, out int ky0, out int ky1), yr = y + (long)r * ow * c;
            for (int ox = oxA > 0 ? 0 : oxB; ox < ow; ox = ox + 1 == oxA ? oxB : ox + 1)
            {
                int ix = ox - padW, kx0 = Math.Max(0, -ix), kx1 = Math.Min(kw, width - ix);
                TV a = b, a2 = default;
                for (int ky = ky0; ky < ky1; ky++)
                {
                    float* xp = xr + ky * rowStride + (long)(ix + kx0) * c, wp = w + (long)(ky * kw + kx0) * cPad;
                    int kx = kx0;
                    // Two chains: a 7x7 border pixel is otherwise one chain of up to 42 dependent multiply-adds.
                    for (; kx + 2 <= kx1; kx += 2, xp += 2 * c, wp += 2 * cPad)
                    {
                        a = TL.Fma(TL.Load(xp, lanes), TL.Load(wp), a);
                        a2 = TL.Fma(TL.Load(xp + c, lanes), TL.Load(wp + cPad), a2);
                    }
                    if (kx < kx1) a = TL.Fma(TL.Load(xp, lanes), TL.Load(wp), a);
                }
                TL.Store(yr + (long)ox * c, lanes, TL.Add(a, a2));
            }
        }
    }

    /// <summary>One SIMD width, so that the kernel is written once for AVX-512 and Vector256.</summary>
    private interface ILanes<TV> where TV : struct
    {
        static abstract int Count { get; }
        static abstract TV Load(float* p);
        /// <summary>A vector of input channels: all <see cref="Count"/> here; in <see cref="Part{TL, TV}"/> the first <paramref name="lanes"/>.</summary>
        static abstract TV Load(float* p, int lanes);
        static abstract void Store(float* p, int lanes, TV v);
        /// <summary>The first <paramref name="lanes"/> floats at p, zeros after them (nothing past them is read).</summary>
        static abstract TV LoadPart(float* p, int lanes);
        static abstract void StorePart(float* p, int lanes, TV v);
        static abstract TV Fma(TV a, TV b, TV c);
        static abstract TV Mul(TV a, TV b);
        static abstract TV Add(TV a, TV b);
    }

    /// <summary>TL for C below one vector: every input load and output store partial.</summary>
    private struct Part<TL, TV> : ILanes<TV> where TL : struct, ILanes<TV> where TV : struct
    {
        public static int Count => TL.Count;
        public static TV Load(float* p) => TL.Load(p);
        public static TV Load(float* p, int lanes) => TL.LoadPart(p, lanes);
        public static void Store(float* p, int lanes, TV v) => TL.StorePart(p, lanes, v);
        public static TV LoadPart(float* p, int lanes) => TL.LoadPart(p, lanes);
        public static void StorePart(float* p, int lanes, TV v) => TL.StorePart(p, lanes, v);
        public static TV Fma(TV a, TV b, TV c) => TL.Fma(a, b, c);
        public static TV Mul(TV a, TV b) => TL.Mul(a, b);
        public static TV Add(TV a, TV b) => TL.Add(a, b);
    }

    private struct Lanes512 : ILanes<Vector512<float>>
    {
        public static int Count => 16;
        public static Vector512<float> Load(float* p) => Vector512.Load(p);
        public static Vector512<float> Load(float* p, int lanes) => Vector512.Load(p);
        public static void Store(float* p, int lanes, Vector512<float> v) => v.Store(p);
        public static Vector512<float> LoadPart(float* p, int lanes) => Avx512F.MaskLoad(p, Mask(lanes), Vector512<float>.Zero);
        public static void StorePart(float* p, int lanes, Vector512<float> v) => Avx512F.MaskStore(p, Mask(lanes), v);
        public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
        public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
        public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        private static Vector512<float> Mask(int lanes) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(lanes)).AsSingle();
    }

    /// <summary>Also the portable path (two 128-bit halves on Arm); a partial vector is copied (C below 8 only).</summary>
    private struct Lanes256 : ILanes<Vector256<float>>
    {
        public static int Count => 8;
        public static Vector256<float> Load(float* p) => Vector256.Load(p);
        public static Vector256<float> Load(float* p, int lanes) => Vector256.Load(p);
        public static void Store(float* p, int lanes, Vector256<float> v) => v.Store(p);
        public static Vector256<float> LoadPart(float* p, int lanes)
        {
            var v = Vector256<float>.Zero;
            Unsafe.CopyBlockUnaligned(&v, p, (uint)lanes * sizeof(float));
            return v;
        }
        public static void StorePart(float* p, int lanes, Vector256<float> v) => Unsafe.CopyBlockUnaligned(p, &v, (uint)lanes * sizeof(float));
        public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
        public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
        public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    }
}
