using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// Conv2d for the `cpu` device: managed SIMD, multi-threaded. Per (image, group) the convolution is the GEMM
/// Y[COut/g, OutH*OutW] = W[COut/g, CIn/g*KH*KW] * im2col(X); <see cref="Sgemm"/> runs it with the im2col
/// matrix packed on the fly (<see cref="Im2ColPacker"/>) and bias + activation fused into the micro-kernel;
/// stride-1 layers with many channels read B in place from a padded input instead (<see cref="PaddedInputPacker"/>),
/// 1x1 layers straight from x. Weights given as constants are packed once (<see cref="PackWeights"/>).
/// Convolutions with one input channel per group (depthwise) have no reduction worth a GEMM and run as a
/// direct vectorized loop instead.
/// </summary>
public static unsafe partial class Conv2dCpu
{
    /// <param name="bias">[COut], or empty when p.HasBias == 0.</param>
    /// <param name="y">[N, COut, OutH, OutW], every element written.</param>
    public static void Forward(in Conv2dParams p, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        Check(p, x, w.Length, bias, y);
        fixed (float* px = x, pw = w, pb = bias, py = y)
        {
            float* pBias = p.HasBias != 0 ? pb : null;
            if (p.CInPerGroup == 1 && !UsesDirect(p)) Depthwise(p, px, pw, pBias, py);
            else
            {
                // Packed per call into a per-thread buffer; callers with constant weights use PackWeights once.
                bool use512 = Sgemm.Use512;
                float* a = Workspace.A(PackedFloats(p, use512));
                PackGroups(p, pw, a, use512);
                Gemm(p, px, a, use512, pBias, py);
            }
        }
    }

    /// <summary>
    /// Convolution with weights packed once by <see cref="PackWeights"/>: no per-call weight packing.
    /// </summary>
    public static void Forward(in Conv2dParams p, ReadOnlySpan<float> x, Conv2dPackedWeights w,
        ReadOnlySpan<float> bias, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(w);
        Check(p, x, p.WeightElements, bias, y);
        if (!w.Matches(p))
            throw new ArgumentException($"conv2d: packed weights {w} (avx512={w.Use512}) do not fit {p} (avx512={Sgemm.Use512})");
        fixed (float* px = x, pb = bias, py = y)
        {
            float* pBias = p.HasBias != 0 ? pb : null;
            if (p.CInPerGroup == 1 && !w.Direct) Depthwise(p, px, w.Data, pBias, py);
            else Gemm(p, px, w.Data, w.Use512, pBias, py);
        }
        GC.KeepAlive(w); // its finalizer must not free the packed memory while the kernels read it
    }

    /// <summary>Packs conv weights [COut, CIn/Groups, KH, KW] for repeated <see cref="Forward(in Conv2dParams, ReadOnlySpan{float}, Conv2dPackedWeights, ReadOnlySpan{float}, Span{float})"/> calls.</summary>
    public static Conv2dPackedWeights PackWeights(in Conv2dParams p, ReadOnlySpan<float> w)
    {
        p.Validate();
        if (w.Length != p.WeightElements)
            throw new ArgumentException($"conv2d: weight buffer of {w.Length} floats does not match {p} (expected {p.WeightElements})");
        bool use512 = Sgemm.Use512;
        bool plain = p.CInPerGroup == 1 && !UsesDirect(p);
        var packed = new Conv2dPackedWeights(p, use512, UsesPaddedInput(p), UsesDirect(p), UsesWinograd(p), plain ? p.WeightElements : PackedFloats(p, use512));
        fixed (float* pw = w)
        {
            if (plain) w.CopyTo(new Span<float>(packed.Data, w.Length));
            else PackGroups(p, pw, packed.Data, use512);
        }
        return packed;
    }

    /// <summary>
    /// The scratch memory a call takes beyond x, w and y, in bytes, summed over <paramref name="threads"/> workers:
    /// the per-thread buffers of <see cref="Workspace"/> (kept after the call, so a plan's scratch is the largest
    /// layer's, not the sum). A padded-input layer copies a whole image (or a chunk of them) twice, as much as its
    /// input and output: at 1500x1500 and 128 channels that is 2.3 GB no activation buffer accounts for.
    /// </summary>
    public static long WorkspaceBytes(in Conv2dParams p, bool weightsPacked, int threads)
    {
        const long Align = 16; // the 64-byte alignment slack of every Workspace buffer, in floats
        bool use512 = Sgemm.Use512;
        long floats;
        if (UsesWinograd(p))
            floats = (weightsPacked ? 0 : PackedFloats(p, use512) + Align + (long)(p.KH + 1) * (p.KH + 1) * p.COut * p.CIn + Align)
                + WinogradWorkspaceFloats(p, threads);
        else if (UsesDirect(p))
            floats = (weightsPacked ? 0 : PackedFloats(p, use512) + Align) + DirectWorkspaceFloats(p, threads);
        else if (p.CInPerGroup == 1)
            floats = threads * ((long)(p.H + p.PadTop + p.PadBottom) * (p.W + p.PadLeft + p.PadRight) + Align);
        else
        {
            floats = weightsPacked ? 0 : PackedFloats(p, use512) + Align;
            if (UsesPaddedInput(p))
            {
                int hp = p.H + p.PadTop + p.PadBottom, wp = p.W + p.PadLeft + p.PadRight;
                long ps = ((long)hp * wp + 15) / 16 * 16 + 16; // PaddedGemm's plane stride, at its largest
                long imageStride = p.CIn * ps, wideImage = (long)p.COut * p.OutH * wp;
                long chunk = Math.Clamp(PaddedChunkFloats / Math.Max(imageStride, wideImage), 1, p.N);
                floats += chunk * imageStride + 64 + (long)(p.KW - 1) * p.DilW + chunk * wideImage + 2 * Align;
                if (!weightsPacked) floats += (long)p.COutPerGroup * p.CInPerGroup * p.KH * p.KW + Align; // tap-major copy
            }
            floats += threads * Sgemm.PackedBBlockFloats(use512);
        }
        return floats * sizeof(float);
    }

    /// <summary>The bytes of <see cref="PackWeights"/>'s result: a second copy of the weights, kept by the device.</summary>
    public static long PackedWeightBytes(in Conv2dParams p) =>
        (p.CInPerGroup == 1 && !UsesDirect(p) ? p.WeightElements : PackedFloats(p, Sgemm.Use512)) * sizeof(float);

    private static void Check(in Conv2dParams p, ReadOnlySpan<float> x, long wLength, ReadOnlySpan<float> bias, Span<float> y)
    {
        p.Validate();
        if (x.Length != p.InputElements || wLength != p.WeightElements || y.Length != p.OutputElements
            || (p.HasBias != 0 && bias.Length != p.COut))
            throw new ArgumentException(
                $"conv2d: buffer sizes x={x.Length} w={wLength} bias={bias.Length} y={y.Length} do not match {p} " +
                $"(expected x={p.InputElements} w={p.WeightElements} bias={(p.HasBias != 0 ? p.COut : 0)} y={p.OutputElements})");
    }

    private static long PackedFloats(in Conv2dParams p, bool use512) => UsesWinograd(p) ? WinogradPackedFloats(p) :
        Sgemm.PackedASize(p.COutPerGroup, p.CInPerGroup * p.KH * p.KW, use512) * p.Groups;

    /// <summary>
    /// Stride-1 layers with enough channels per group to fill a K block read B in place from a padded input
    /// (<see cref="PaddedInputPacker"/>) instead of packing im2col panels: the copy costs as much as the
    /// arithmetic when COut is small (64->64 3x3: 128 flops per packed float). Not worth it when the padded
    /// width wastes over a quarter of the columns.
    /// </summary>
    internal static bool UsesPaddedInput(in Conv2dParams p) =>
        !UsesDirect(p) && p.StrideH == 1 && p.StrideW == 1 && p.KH * p.KW > 1 && p.CInPerGroup >= 32
        && 4 * (p.KW - 1) * p.DilW <= p.OutW;

    private static void PackGroups(in Conv2dParams p, float* w, float* a, bool use512)
    {
        if (UsesWinograd(p))
        {
            PackWinograd(p, w, a);
            return;
        }
        int cog = p.COutPerGroup, cig = p.CInPerGroup, taps = p.KH * p.KW, k = cig * taps;
        long groupA = Sgemm.PackedASize(cog, k, use512);
        bool tapMajor = UsesPaddedInput(p);
        float* reordered = tapMajor ? Workspace.Weights((long)cog * k) : null;
        for (int g = 0; g < p.Groups; g++)
        {
            float* wg = w + (long)g * cog * k;
            if (!tapMajor)
            {
                Sgemm.PackA(wg, k, cog, k, a + g * groupA, use512, kcMax: UsesDirect(p) ? DirectKBlock(k) : 0);
                continue;
            }
            // [co][ci][tap] -> [co][tap][ci], the K order of the padded-input B.
            for (int co = 0; co < cog; co++)
            for (int ci = 0; ci < cig; ci++)
            for (int t = 0; t < taps; t++)
                reordered[(long)co * k + t * cig + ci] = wg[(long)co * k + ci * taps + t];
            Sgemm.PackA(reordered, k, cog, k, a + g * groupA, use512, segment: cig);
        }
    }

    private static void Gemm(in Conv2dParams p, float* x, float* a, bool use512, float* bias, float* y)
    {
        if (UsesWinograd(p))
        {
            WinogradConv(p, x, a, bias, y);
            return;
        }
        if (UsesDirect(p))
        {
            DirectGemm(p, x, a, bias, y);
            return;
        }
        if (UsesPaddedInput(p))
        {
            PaddedGemm(p, x, a, use512, bias, y);
            return;
        }
        int cog = p.COutPerGroup, k = p.CInPerGroup * p.KH * p.KW, spatial = p.OutH * p.OutW;
        var problem = new GemmProblem
        {
            Use512 = use512,
            Batches = p.N, Groups = p.Groups, M = cog, N = spatial, K = k,
            APacked = (nint)a,
            C = (nint)y, CBatchStride = (long)p.COut * spatial, CGroupStride = (long)cog * spatial, Ldc = spatial,
            Bias = (nint)bias, Act = p.Act, Slope = p.Slope,
        };
        Sgemm.Run(problem, new Im2ColPacker { X = x, P = p });
    }

    /// <summary>
    /// Padded-input and wide-output buffers are kept per thread: run big batches a few images at a time
    /// (tests lower it to exercise the chunking, on their own thread only; only speed depends on it).
    /// </summary>
    internal static long PaddedChunkFloats
    {
        get => t_paddedChunkFloats > 0 ? t_paddedChunkFloats : DefaultPaddedChunkFloats;
        set => t_paddedChunkFloats = value;
    }
    private const long DefaultPaddedChunkFloats = 1L << 24;
    [ThreadStatic] private static long t_paddedChunkFloats;

    private static void PaddedGemm(in Conv2dParams p, float* x, float* a, bool use512, float* bias, float* y)
    {
        int hp = p.H + p.PadTop + p.PadBottom, wp = p.W + p.PadLeft + p.PadRight;
        // Plane stride: an odd multiple of 16 floats, so the kc rows of a panel spread over the L1 sets.
        int ps = (hp * wp + 15) / 16 * 16;
        if (ps / 16 % 2 == 0) ps += 16;
        long imageStride = (long)p.CIn * ps;
        long slack = 64 + (long)(p.KW - 1) * p.DilW;
        int cog = p.COutPerGroup, k = p.CInPerGroup * p.KH * p.KW, wide = p.OutH * wp, ow = p.OutW;
        long wideImage = (long)p.COut * wide;
        int chunk = (int)Math.Clamp(PaddedChunkFloats / Math.Max(imageStride, wideImage), 1, p.N);
        float* xp = Workspace.Input(chunk * imageStride + slack);
        float* c = Workspace.Output(chunk * wideImage);
        for (int n0 = 0; n0 < p.N; n0 += chunk)
        {
            int nb = Math.Min(chunk, p.N - n0);
            float* xChunk = x + (long)n0 * p.CIn * p.H * p.W;
            for (long plane = 0; plane < (long)nb * p.CIn; plane++)
                PadPlane(p, xChunk + plane * p.H * p.W, xp + plane * ps, ps);
            new Span<float>(xp + nb * imageStride, (int)slack).Clear();

            var problem = new GemmProblem
            {
                Use512 = use512,
                Batches = nb, Groups = p.Groups, M = cog, N = wide, K = k, KSegment = p.CInPerGroup,
                APacked = (nint)a,
                C = (nint)c, CBatchStride = wideImage, CGroupStride = (long)cog * wide, Ldc = wide,
                Bias = (nint)bias, Act = p.Act, Slope = p.Slope,
            };
            Sgemm.Run(problem, new PaddedInputPacker
            {
                XPad = xp, ImageStride = imageStride, PlaneStride = ps, Cig = p.CInPerGroup, Wp = wp,
                KW = p.KW, DilH = p.DilH, DilW = p.DilW,
            });
            // Drop the columns past OutW of every output row.
            long rows = (long)nb * p.COut * p.OutH;
            float* yChunk = y + (long)n0 * p.COut * p.OutH * ow;
            for (long r = 0; r < rows; r++)
                new ReadOnlySpan<float>(c + r * wp, ow).CopyTo(new Span<float>(yChunk + r * ow, ow));
        }
    }

    /// <summary>Copies one H x W input plane into a zero-padded plane of <paramref name="planeStride"/> floats (the tail zeroed too).</summary>
    internal static void PadPlane(in Conv2dParams p, float* src, float* dst, int planeStride)
    {
        int wp = p.W + p.PadLeft + p.PadRight, hp = p.H + p.PadTop + p.PadBottom;
        new Span<float>(dst, p.PadTop * wp).Clear();
        float* row = dst + p.PadTop * wp;
        for (int r = 0; r < p.H; r++, row += wp)
        {
            new Span<float>(row, p.PadLeft).Clear();
            new ReadOnlySpan<float>(src + (long)r * p.W, p.W).CopyTo(new Span<float>(row + p.PadLeft, p.W));
            new Span<float>(row + p.PadLeft + p.W, p.PadRight).Clear();
        }
        new Span<float>(row, p.PadBottom * wp + planeStride - hp * wp).Clear();
    }

    /// <summary>One input channel per group: each output plane is a sum of KH*KW shifted, scaled input rows.</summary>
    private static void Depthwise(in Conv2dParams p, float* x, float* w, float* bias, float* y)
    {
        var q = p;
        nint xp = (nint)x, wp = (nint)w, bp = (nint)bias, yp = (nint)y;
        int planes = p.N * p.COut;
        if (p.Flops < 1e6) for (int i = 0; i < planes; i++) DepthwisePlane(q, (float*)xp, (float*)wp, (float*)bp, (float*)yp, i);
        else CpuParallel.For(0, planes, i => DepthwisePlane(q, (float*)xp, (float*)wp, (float*)bp, (float*)yp, i));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DepthwisePlane(in Conv2dParams p, float* x, float* w, float* bias, float* y, int plane)
    {
        int n = plane / p.COut, co = plane - n * p.COut;
        int c = co / p.COutPerGroup;
        int oh = p.OutH, ow = p.OutW, sh = p.StrideH, sw = p.StrideW, kh = p.KH, kw = p.KW, dh = p.DilH, dw = p.DilW;
        int height = p.H, width = p.W, wp = width + p.PadLeft + p.PadRight, hp = height + p.PadTop + p.PadBottom;
        float* src = x + ((long)n * p.CIn + c) * height * width;
        float* dst = y + (long)plane * oh * ow;
        float* wk = w + (long)co * kh * kw;
        float b0 = bias != null ? bias[co] : 0f;

        // Copy the plane into a zero-padded scratch plane: every tap is then in bounds, no edge cases.
        float* pad = Workspace.Plane((long)hp * wp);
        for (int r = 0; r < hp; r++)
        {
            var row = new Span<float>(pad + (long)r * wp, wp);
            int iy = r - p.PadTop;
            if ((uint)iy >= (uint)height) { row.Clear(); continue; }
            row[..p.PadLeft].Clear();
            new ReadOnlySpan<float>(src + (long)iy * width, width).CopyTo(row[p.PadLeft..]);
            row[(p.PadLeft + width)..].Clear();
        }

        int vec = Vector256<float>.Count;
        var w3 = kh == 3 && kw == 3 ? new Taps3x3(wk) : default;
        for (int oy = 0; oy < oh; oy++)
        {
            float* yrow = dst + (long)oy * ow;
            float* top = pad + (long)oy * sh * wp;
            int o = 0;
            if (sw == 1 && ow >= vec)
            {
                // The last vector overlaps the previous one rather than leaving a scalar tail: outputs are
                // written, not accumulated, so recomputing a few is harmless.
                for (; ; o = Math.Min(o + vec, ow - vec))
                {
                    if (kh == 3 && kw == 3)
                    {
                        Depthwise3x3(top + o, wp * dh, dw, w3, b0).Store(yrow + o);
                        if (o == ow - vec) break;
                        continue;
                    }
                    var acc = Vector256.Create(b0);
                    for (int ky = 0; ky < kh; ky++)
                    {
                        float* s = top + (long)ky * dh * wp + o;
                        float* wr = wk + ky * kw;
                        for (int kx = 0; kx < kw; kx++)
                            acc = Vector256.FusedMultiplyAdd(Vector256.Create(wr[kx]), Vector256.Load(s + kx * dw), acc);
                    }
                    acc.Store(yrow + o);
                    if (o == ow - vec) break;
                }
                o = ow;
            }
            for (; o < ow; o++)
            {
                float acc = b0;
                for (int ky = 0; ky < kh; ky++)
                {
                    float* s = top + (long)ky * dh * wp + o * sw;
                    float* wr = wk + ky * kw;
                    for (int kx = 0; kx < kw; kx++) acc += wr[kx] * s[kx * dw];
                }
                yrow[o] = acc;
            }
        }
        var outPlane = new Span<float>(dst, oh * ow);
        if (p.Act == Activation.Relu) TensorPrimitives.Max(outPlane, 0f, outPlane);
        else if (p.Act == Activation.LeakyRelu)
            for (int i = 0; i < outPlane.Length; i++)
                if (!(outPlane[i] >= 0)) outPlane[i] *= p.Slope;
    }

    /// <summary>The nine taps of a 3x3 kernel, broadcast once per plane.</summary>
    private readonly struct Taps3x3(float* w)
    {
        public readonly Vector256<float> W0 = Vector256.Create(w[0]), W1 = Vector256.Create(w[1]), W2 = Vector256.Create(w[2]),
            W3 = Vector256.Create(w[3]), W4 = Vector256.Create(w[4]), W5 = Vector256.Create(w[5]),
            W6 = Vector256.Create(w[6]), W7 = Vector256.Create(w[7]), W8 = Vector256.Create(w[8]);
    }

    /// <summary>Eight outputs of a 3x3 depthwise stencil; three independent chains keep the FMA pipes busy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Depthwise3x3(float* s, long rowStride, int dw, in Taps3x3 t, float b0)
    {
        float* s1 = s + rowStride, s2 = s1 + rowStride;
        var a0 = Vector256.FusedMultiplyAdd(t.W0, Vector256.Load(s), Vector256.Create(b0));
        var a1 = Vector256.Multiply(t.W3, Vector256.Load(s1));
        var a2 = Vector256.Multiply(t.W6, Vector256.Load(s2));
        a0 = Vector256.FusedMultiplyAdd(t.W1, Vector256.Load(s + dw), a0);
        a1 = Vector256.FusedMultiplyAdd(t.W4, Vector256.Load(s1 + dw), a1);
        a2 = Vector256.FusedMultiplyAdd(t.W7, Vector256.Load(s2 + dw), a2);
        a0 = Vector256.FusedMultiplyAdd(t.W2, Vector256.Load(s + 2 * dw), a0);
        a1 = Vector256.FusedMultiplyAdd(t.W5, Vector256.Load(s1 + 2 * dw), a1);
        a2 = Vector256.FusedMultiplyAdd(t.W8, Vector256.Load(s2 + 2 * dw), a2);
        return a0 + a1 + a2;
    }
}
