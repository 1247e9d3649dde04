using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Pool;
using GpuAnomaly.Kernels.StudentTeacher;
using GpuAnomaly.Kernels.Attention;
using GpuAnomaly.Kernels.Ternary;
using GpuAnomaly.Kernels.Vim;
using GpuAnomaly.Kernels.Knn;
using GpuAnomaly.Kernels.Memory;
using GpuAnomaly.Kernels.Transformer;

namespace GpuAnomaly.Engine.Benchmarks;

/// <summary>
/// The shapes `gpuanomaly bench` times, with each kernel variant the device has
/// (cuda / ilgpu-cpu: direct and implicit-GEMM conv; cpu: the SIMD kernels). The same shapes
/// are in tools/bench/torch_kernels.py, so PyTorch can be timed beside us on one machine.
/// </summary>
public static class KernelSuite
{
    public sealed record ConvCase(string Name, Conv2dParams P);
    public sealed record PoolCase(string Name, Pool2dParams P);
    public sealed record StudentTeacherCase(string Name, StudentTeacherScoreParams P);

    public static IReadOnlyList<ConvCase> ConvCases(bool small) => small
        ? [
            new("3x3 64->64 s1 p1", Conv2dParams.Create(1, 8, 12, 12, 8, 3, 3, padding: 1, act: Activation.LeakyRelu, slope: 5e-3f)),
            new("1x1 16->8", Conv2dParams.Create(1, 16, 8, 8, 8, 1, 1)),
          ]
        : [
            new("resnet 3x3 64->64 56x56 b8", Conv2dParams.Create(8, 64, 56, 56, 64, 3, 3, padding: 1, act: Activation.Relu)),
            new("stem 7x7/2 3->64 224x224 b8", Conv2dParams.Create(8, 3, 224, 224, 64, 7, 7, stride: 2, padding: 3, act: Activation.Relu)),
            new("pointwise 1x1 256->128 28x28 b8", Conv2dParams.Create(8, 256, 28, 28, 128, 1, 1)),
            new("depthwise 3x3 128 56x56 b8", Conv2dParams.Create(8, 128, 56, 56, 128, 3, 3, padding: 1, groups: 128)),
            new("US p17 conv1 6x6 3->128 271x271", Conv2dParams.Create(1, 3, 271, 271, 128, 6, 6, act: Activation.LeakyRelu, slope: 5e-3f)),
            new("US p17 conv2 5x5 128->256 266x266", Conv2dParams.Create(1, 128, 266, 266, 256, 5, 5, act: Activation.LeakyRelu, slope: 5e-3f)),
            new("US p33 conv 5x5 d2 128->256 140x140", Conv2dParams.Create(1, 128, 140, 140, 256, 5, 5, dilation: 2, act: Activation.LeakyRelu, slope: 5e-3f)),
          ];

    public static IReadOnlyList<PoolCase> PoolCases(bool small) => small
        ? [
            new("max 2x2/1", Pool2dParams.Create(PoolKind.Max, 1, 4, 12, 12, 2, stride: 1)),
            new("avg 3x3/1 p1", Pool2dParams.Create(PoolKind.Avg, 1, 4, 12, 12, 3, stride: 1, padding: 1)),
          ]
        : [
            new("max 2x2/1 128ch 128x128 b8", Pool2dParams.Create(PoolKind.Max, 8, 128, 128, 128, 2, stride: 1)),
            new("max 2x2/1 d2 256ch 64x64 b8", Pool2dParams.Create(PoolKind.Max, 8, 256, 64, 64, 2, stride: 1, dilation: 2)),
            new("max 2x2/2 128ch 128x128 b8", Pool2dParams.Create(PoolKind.Max, 8, 128, 128, 128, 2)),
            new("avg 3x3/1 p1 64ch 112x112 b8", Pool2dParams.Create(PoolKind.Avg, 8, 64, 112, 112, 3, stride: 1, padding: 1)),
          ];

    /// <summary>A generic ONNX op as an imported graph runs it (NdReduce / NdMath on cpu, ReduceGpu / BroadcastGpu on ILGPU devices).</summary>
    public sealed record GenericOpCase(string Name, HostKernelOp Op, Shape[] Inputs);

    public static IReadOnlyList<GenericOpCase> GenericOpCases(bool small) => small
        ? [
            new("2x3x5x7 over HW", new ReduceOp(ReduceKind.Mean, [2, 3], true), [new Shape(2, 3, 5, 7)]),
            new("3x300 over 300", new ReduceOp(ReduceKind.LogSumExp, [1], false), [new Shape(3, 300)]),
            new("5x7 over 7", new ReduceOp(ReduceKind.LogSumExp, [1], false), [new Shape(5, 7)]),
            new("2x3x5x7 by 3x1x1", new BroadcastBinaryOp(BinaryKind.Mod), [new Shape(2, 3, 5, 7), new Shape(3, 1, 1)]),
          ]
        : [
            // GlobalAveragePool of a ResNet-like tail.
            new("8x512x14x14 over HW", new ReduceOp(ReduceKind.Mean, [2, 3], true), [new Shape(8, 512, 14, 14)]),
            // The energy score's log-sum-exp over 1000 logits (the grouped kernel on GPUs), beside LogSum's one pass:
            // LogSumExp reads each row twice, its max first.
            new("256x1000 over 1000", new ReduceOp(ReduceKind.LogSum, [1], false), [new Shape(256, 1000)]),
            new("256x1000 over 1000", new ReduceOp(ReduceKind.LogSumExp, [1], false), [new Shape(256, 1000)]),
            // Short rows: one thread per output on GPUs.
            new("16384x10 over 10", new ReduceOp(ReduceKind.LogSumExp, [1], false), [new Shape(16384, 10)]),
            new("8x128x56x56 by 128x1x1", new BroadcastBinaryOp(BinaryKind.Mod), [new Shape(8, 128, 56, 56), new Shape(128, 1, 1)]),
          ];

    /// <summary>Uninformed Students scoring at the paper's sizes (D = 128, M = 3 students): memory bound.</summary>
    public static IReadOnlyList<StudentTeacherCase> StudentTeacherCases(bool small) => small
        ? [new("D5 M3 9x9", StudentTeacherScoreParams.Create(1, 5, 9, 9, 3))]
        : [
            new("D128 M3 256x256", StudentTeacherScoreParams.Create(1, 128, 256, 256, 3)),
            new("D128 M3 256x256 b4", StudentTeacherScoreParams.Create(4, 128, 256, 256, 3)),
          ];

    public sealed record TernaryCase(string Name, int M, int N, int K);

    /// <summary>
    /// TernaryLinear shapes of the ternary issue: LLM-sized GEMVs (batch 1) and GEMMs at batch 8/32/128. Weights are
    /// cycled through copies totalling more than 64 MB, so the H100's 50 MB L2 cannot hold them.
    /// </summary>
    public static IReadOnlyList<TernaryCase> TernaryCases(bool small) => small
        ? [new("gemv 40x70", 1, 40, 70), new("gemm b5 40x70", 5, 40, 70)]
        : [
            new("gemv 8192x8192", 1, 8192, 8192), new("gemv 4096x11008", 1, 4096, 11008), new("gemv 11008x4096", 1, 11008, 4096),
            new("gemm b8 4096x4096", 8, 4096, 4096), new("gemm b32 4096x4096", 32, 4096, 4096), new("gemm b128 4096x4096", 128, 4096, 4096),
          ];

    public sealed record VimCase(string Name, VimParams P);

    /// <summary>
    /// Fused ViM scoring (issue 6): the cpu bench's two shapes (CIFAR-sized head, ImageNet-sized head, residual dims
    /// by the official rule) and the ImageNet one at 4096 samples, enough to fill a large GPU.
    /// </summary>
    public static IReadOnlyList<VimCase> VimCases(bool small) => small
        ? [new("S5 N40 C7 K20", VimParams.Create(5, 40, 7, 20, 0.5f))]
        : [
            new("S256 N512 C10 K256", VimParams.Create(256, 512, 10, 256, 0.5f)),
            new("S256 N1024 C1000 K512", VimParams.Create(256, 1024, 1000, 512, 0.5f)),
            new("S4096 N1024 C1000 K512", VimParams.Create(4096, 1024, 1000, 512, 0.5f)),
          ];

    public sealed record AttentionCase(string Name, WindowAttentionParams P);

    /// <summary>Swin-T stage 1 (ws 7, d 32, 56x56, batch 32, 3 heads), shifted, and SparseViT groups: issue 5's target shape.</summary>
    public static IReadOnlyList<AttentionCase> AttentionCases(bool small) => small
        ? [new("window 9x7 ws4 h2 d8", WindowAttentionParams.Window(1, 9, 7, 2, 8, 4, 2))]
        : [
            new("window ws7 d32 h3 56x56 b32", WindowAttentionParams.Window(32, 56, 56, 3, 32, 7)),
            new("shifted ws7 d32 h3 56x56 b32", WindowAttentionParams.Window(32, 56, 56, 3, 32, 7, 3)),
            new("sparse S2 d64 h4 28x28 b32", WindowAttentionParams.Sparse(32, 28, 28, 4, 64, 2)),
          ];

    /// <summary>Times every case on <paramref name="device"/>; <paramref name="progress"/> is told each kernel's name first.</summary>
    public static List<BenchmarkResult> Run(Device device, bool small, string filter = "", Action<string>? progress = null)
    {
        var results = new List<BenchmarkResult>();
        var rng = new Random(1234);
        bool Want(string s) => filter.Length == 0 || s.Contains(filter, StringComparison.OrdinalIgnoreCase);

        foreach (var c in ConvCases(small))
        {
            var p = c.P;
            var variants = new List<(string, Action<Tensor, Tensor, Tensor, Tensor>)>();
            if (device is IlgpuDevice gpu)
            {
                variants.Add(("conv2d.implicit_gemm", (x, w, b, y) => gpu.ConvKernels.ImplicitGemm(p, x.View<float>(), w.View<float>(), b.View<float>(), y.View<float>())));
                variants.Add(("conv2d.implicit_gemm_large", (x, w, b, y) => gpu.ConvKernels.ImplicitGemmLarge(p, x.View<float>(), w.View<float>(), b.View<float>(), y.View<float>())));
                variants.Add(("conv2d.direct_wide", (x, w, b, y) => gpu.ConvKernels.DirectWide(p, x.View<float>(), w.View<float>(), b.View<float>(), y.View<float>())));
                variants.Add(("conv2d.direct", (x, w, b, y) => gpu.ConvKernels.Direct(p, x.View<float>(), w.View<float>(), b.View<float>(), y.View<float>())));
            }
            else variants.Add(("conv2d", (x, w, b, y) => device.Conv2d(p, x, w, b, y)));
            if (!variants.Any(v => Want(v.Item1 + " " + c.Name))) continue;

            using var xt = device.FromHost(Random(rng, p.InputElements), new Shape((int)p.InputElements));
            using var wt = device.FromHost(Random(rng, p.WeightElements), new Shape((int)p.WeightElements));
            using var bt = device.FromHost(Random(rng, p.COut), new Shape(p.COut));
            using var yt = device.Allocate(new Shape((int)p.OutputElements));
            double bytes = 4.0 * (p.InputElements + p.WeightElements + p.COut + p.OutputElements);
            foreach (var (kernel, run) in variants)
            {
                if (!Want(kernel + " " + c.Name)) continue;
                progress?.Invoke($"{kernel} {c.Name}");
                results.Add(DeviceTimer.Time(device, kernel, c.Name, p.Flops, bytes, () => run(xt, wt, bt, yt)));
            }
        }

        foreach (var c in PoolCases(small))
        {
            if (!Want("pool2d " + c.Name)) continue;
            var p = c.P;
            using var xt = device.FromHost(Random(rng, p.InputElements), new Shape((int)p.InputElements));
            using var yt = device.Allocate(new Shape((int)p.OutputElements));
            progress?.Invoke($"pool2d {c.Name}");
            double flops = (double)p.OutputElements * p.KH * p.KW;
            results.Add(DeviceTimer.Time(device, "pool2d", c.Name, flops, 4.0 * (p.InputElements + p.OutputElements), () => device.Pool2d(p, xt, yt)));
        }

        int n = small ? 4099 : 1 << 26;
        if (Want("elementwise"))
        {
            using var a = device.FromHost(Random(rng, n), new Shape(n));
            using var b = device.FromHost(Random(rng, n), new Shape(n));
            using var y = device.Allocate(new Shape(n));
            progress?.Invoke("elementwise");
            results.Add(DeviceTimer.Time(device, "leaky_relu", $"{n} floats", n, 8.0 * n, () => device.LeakyRelu(a, 5e-3f, y)));
            results.Add(DeviceTimer.Time(device, "add", $"{n} floats", n, 12.0 * n, () => device.Add(a, b, y)));
        }

        foreach (var c in GenericOpCases(small))
        {
            if (!Want(c.Op.Kind + " " + c.Name)) continue;
            var inputs = c.Inputs.Select(shape => device.FromHost(Random(rng, shape.Elements), shape)).ToArray();
            var yShape = c.Op.InferShape(c.Inputs);
            using var y = device.Allocate(yShape);
            progress?.Invoke($"{c.Op.Kind} {c.Name}");
            // One operation per element of the larger side; bytes: inputs read once, output written once.
            double read = c.Inputs.Sum(shape => (double)shape.Elements);
            results.Add(DeviceTimer.Time(device, c.Op.Kind, c.Name, Math.Max(c.Inputs[0].Elements, yShape.Elements), 4.0 * (read + yShape.Elements),
                () => c.Op.Run(device, inputs, y)));
            foreach (var t in inputs) t.Dispose();
        }

        foreach (var c in StudentTeacherCases(small))
        {
            if (!Want("student_teacher_score " + c.Name)) continue;
            var p = c.P;
            using var teacher = device.FromHost(Random(rng, p.DescriptorElements), new Shape((int)p.DescriptorElements));
            using var students = device.FromHost(Random(rng, p.StudentsElements), new Shape((int)p.StudentsElements));
            var sigmaHost = Random(rng, p.D);
            for (int i = 0; i < sigmaHost.Length; i++) sigmaHost[i] = 1.5f + sigmaHost[i];
            using var mu = device.FromHost(Random(rng, p.D), new Shape(p.D));
            using var sigma = device.FromHost(sigmaHost, new Shape(p.D));
            using var score = device.Allocate(new Shape((int)p.OutputElements));
            progress?.Invoke($"student_teacher_score {c.Name}");
            // Per pixel and channel: normalize (2), mean of M (M), error (3), M squared deviations (3M).
            double flops = (double)p.DescriptorElements * (4 * p.M + 5);
            double bytes = 4.0 * (p.StudentsElements + p.DescriptorElements + 2 * p.D + p.OutputElements);
            results.Add(DeviceTimer.Time(device, "student_teacher_score", c.Name, flops, bytes,
                () => device.StudentTeacherScore(p, teacher, students, mu, sigma, score)));
        }
        RunTernary(device, small, Want, progress, rng, results);
        RunAttention(device, small, Want, progress, rng, results);
        RunVim(device, small, Want, progress, rng, results);
        RunCoreset(device, small, Want, progress, rng, results);
        RunKnn(device, small, Want, progress, rng, results);
        return results;
    }

    private static void RunTernary(Device device, bool small, Func<string, bool> want, Action<string>? progress, Random rng, List<BenchmarkResult> results)
    {
        foreach (var c in TernaryCases(small))
        foreach (var act in new[] { TernaryActivations.A32, TernaryActivations.A8 })
        {
            string kernel = $"ternary_linear.{(act == TernaryActivations.A8 ? "a8" : "a32")}";
            if (!want($"{kernel} {c.Name}")) continue;
            var p = TernaryLinearParams.Create(c.M, c.N, c.K, TernaryScale.Row, true, act);
            long weightBytes = TernaryPacking.Bytes(c.N, c.K);
            int copies = small ? 2 : (int)Math.Max(2, (64L << 20) / weightBytes + 1);
            var values = new sbyte[(long)c.N * c.K];
            for (long i = 0; i < values.Length; i++) values[i] = (sbyte)(rng.Next(3) - 1);
            var packed = TernaryPacking.Pack(values, c.N, c.K);
            var bytesOfWeights = new byte[packed.Length * 4];
            Buffer.BlockCopy(packed, 0, bytesOfWeights, 0, bytesOfWeights.Length);
            var weights = new List<Tensor>();
            try
            {
                for (int i = 0; i < copies; i++)
                {
                    var w = device.Allocate(new Shape(c.N, c.K), DType.Ternary2, "benchmark ternary weights");
                    weights.Add(w);
                    device.CopyFromHost(bytesOfWeights, w);
                }
                using var x = device.FromHost(Random(rng, p.InputElements), new Shape(c.M, c.K));
                using var scale = device.FromHost(Random(rng, c.N), new Shape(c.N));
                using var bias = device.FromHost(Random(rng, c.N), new Shape(c.N));
                using var y = device.Allocate(new Shape(c.M, c.N));
                int next = 0;
                progress?.Invoke($"{kernel} {c.Name}");
                results.Add(DeviceTimer.Time(device, kernel, $"{c.Name} ({copies} weight copies)", p.Flops, p.MinBytes,
                    () => device.TernaryLinear(p, x, weights[next++ % copies], scale, bias, y)));
                // The GEMV's split of K at other widths than the default, for a GPU to pick the best (".w2" = 2 warps a group).
                if (device is IlgpuDevice gpu && c.M <= TernaryLinearGpu.GemvMaxTokens)
                {
                    var gemv = gpu.TernaryKernels;
                    int defaultWarps = gemv.GemvWarps;
                    try
                    {
                        foreach (int warps in new[] { 2, 4, 8 }.Where(w => w != defaultWarps))
                        {
                            gemv.GemvWarps = warps;
                            progress?.Invoke($"{kernel}.w{warps} {c.Name}");
                            results.Add(DeviceTimer.Time(device, $"{kernel}.w{warps}", $"{c.Name} ({copies} weight copies)", p.Flops, p.MinBytes,
                                () => device.TernaryLinear(p, x, weights[next++ % copies], scale, bias, y)));
                        }
                    }
                    finally
                    {
                        gemv.GemvWarps = defaultWarps;
                    }
                }
            }
            finally
            {
                foreach (var w in weights) w.Dispose();
            }
        }
        // The float Linear on the GEMV shapes, for the ternary speed-up (fp32 weights are far larger than L2 already).
        foreach (var c in TernaryCases(small).Where(c => c.M == 1))
        {
            if (!want($"linear {c.Name}")) continue;
            var p = LinearParams.Create(c.M, c.K, c.N);
            using var x = device.FromHost(Random(rng, p.InputElements), new Shape(c.M, c.K));
            using var w = device.FromHost(Random(rng, p.WeightElements), new Shape(c.N, c.K));
            using var bias = device.FromHost(Random(rng, c.N), new Shape(c.N));
            using var y = device.Allocate(new Shape(c.M, c.N));
            progress?.Invoke($"linear {c.Name}");
            results.Add(DeviceTimer.Time(device, "linear.fp32", c.Name, 2.0 * c.M * c.N * c.K, 4.0 * (p.WeightElements + p.InputElements + p.OutputElements + c.N),
                () => device.Linear(p, x, w, bias, y)));
        }
    }

    private static void RunAttention(Device device, bool small, Func<string, bool> want, Action<string>? progress, Random rng, List<BenchmarkResult> results)
    {
        foreach (var c in AttentionCases(small))
        {
            if (!want($"window_attention {c.Name}")) continue;
            var p = c.P;
            using var qkv = device.FromHost(Random(rng, p.QkvElements), new Shape((int)p.QkvElements));
            using var pad = device.FromHost(Random(rng, 3L * p.Channels), new Shape(3 * p.Channels));
            using var table = p.BiasElements > 0 ? device.FromHost(Random(rng, p.BiasElements), new Shape(p.BiasElements)) : null;
            using var y = device.Allocate(new Shape((int)p.OutputElements));
            progress?.Invoke($"window_attention {c.Name}");
            results.Add(DeviceTimer.Time(device, "window_attention", c.Name, p.Flops, 4.0 * (p.QkvElements + p.OutputElements),
                () => device.WindowAttention(p, qkv, pad, table, y)));
        }
    }

    private static void RunVim(Device device, bool small, Func<string, bool> want, Action<string>? progress, Random rng, List<BenchmarkResult> results)
    {
        foreach (var c in VimCases(small))
        {
            if (!want($"vim_score {c.Name}")) continue;
            var p = c.P;
            using var x = device.FromHost(Random(rng, p.FeatureElements), new Shape(p.S, p.N));
            using var w = device.FromHost(Random(rng, p.WeightElements), new Shape(p.C, p.N));
            using var b = device.FromHost(Random(rng, p.C), new Shape(p.C));
            using var o = device.FromHost(Random(rng, p.N), new Shape(p.N));
            using var rt = device.FromHost(Random(rng, p.BasisElements), new Shape(p.ResidualDim, p.N));
            using var y = device.Allocate(new Shape((int)p.OutputElements));
            progress?.Invoke($"vim_score {c.Name}");
            // Logits and the residual projection: 2 S (C + K) N; the features, head and basis read once, six scores a sample written.
            double flops = 2.0 * p.S * (p.C + p.ResidualDim) * p.N;
            double bytes = 4.0 * (p.FeatureElements + p.WeightElements + p.C + p.N + p.BasisElements + p.OutputElements);
            results.Add(DeviceTimer.Time(device, "vim_score", c.Name, flops, bytes, () => device.VimScore(p, x, w, b, o, rt, y)));
        }
    }

    /// <summary>PatchCore's coreset (METHODS.md §5): 100k patch features of 128 dims, 10 % kept, in a 128-dim projection.</summary>
    private static void RunCoreset(Device device, bool small, Func<string, bool> want, Action<string>? progress, Random rng, List<BenchmarkResult> results)
    {
        var (name, p) = small ? ("coreset 301x16 -> 30", CoresetParams.Create(301, 16, 8, 30, 5))
            : ("coreset 100000x128 -> 10000", CoresetParams.Create(100_000, 128, 128, 10_000, CoresetProjection.Start(100_000, 1)));
        if (!want(name)) return;
        using var x = device.FromHost(Random(rng, p.FeatureElements), new Shape(p.N, p.D));
        using var r = device.FromHost(CoresetProjection.Gaussian(p.D, p.Projected, 1), new Shape(p.D, p.Projected));
        using var sel = device.Allocate(new Shape(p.Count), DType.I32);
        using var min = device.Allocate(new Shape(p.N));
        progress?.Invoke(name);
        // Projection 2 N D P, then per pick 3 N P (difference, square, add); the projected features stream once a pick.
        double flops = 2.0 * p.N * p.D * p.Projected + 3.0 * p.Count * p.N * p.Dims;
        double bytes = 4.0 * (p.FeatureElements + p.ProjectionElements + (double)p.Count * p.N * (p.Dims + 2));
        results.Add(DeviceTimer.Time(device, "coreset", name, flops, bytes, () => device.Coreset(p, x, r, sel, min)));
    }

    /// <summary>
    /// The memory bank's searches (METHODS.md §5): PatchCore's 784 patches of an image against a 100k-row bank (k = 1
    /// the score, k = 9 the reweighting), one query against a 1M-row bank, and SpCL's scoring of 784 queries.
    /// Traffic counts each input once (the fused kernels write only the top-k), so the GB/s is a lower bound.
    /// </summary>
    private static void RunKnn(Device device, bool small, Func<string, bool> want, Action<string>? progress, Random rng, List<BenchmarkResult> results)
    {
        var cases = small
            ? new[] { ("knn 40x300x16 k1", KnnParams.Create(40, 300, 16, 1)), ("knn 40x300x16 k9", KnnParams.Create(40, 300, 16, 9)),
                      ("knn 1x1000x16 k10", KnnParams.Create(1, 1000, 16, 10)) }
            : new[] { ("knn 784x100000x128 k1", KnnParams.Create(784, 100_000, 128, 1)), ("knn 784x100000x128 k9", KnnParams.Create(784, 100_000, 128, 9)),
                      ("knn 1x1000000x128 k10", KnnParams.Create(1, 1_000_000, 128, 10)) };
        foreach (var (name, p) in cases)
        {
            if (!want(name)) continue;
            using var q = device.FromHost(Random(rng, p.QueryElements), new Shape(p.Q, p.D));
            using var bank = device.FromHost(Random(rng, p.BankElements), new Shape(p.N, p.D));
            using var norms = device.Allocate(new Shape(p.N));
            device.RowNorms(p.N, p.D, bank, norms);
            using var dist = device.Allocate(new Shape(p.Q, p.K));
            using var idx = device.Allocate(new Shape(p.Q, p.K), DType.I32);
            progress?.Invoke(name);
            double bytes = 4.0 * (p.QueryElements + p.BankElements + p.N + 2 * p.OutputElements);
            results.Add(DeviceTimer.Time(device, "knn", name, p.Flops, bytes, () => device.Knn(p, q, bank, norms, dist, idx)));
        }
        var (hname, hp) = small ? ("hybrid_memory 40x300x16", HybridMemoryScoreParams.Create(40, 300, 16))
            : ("hybrid_memory 784x100000x128", HybridMemoryScoreParams.Create(784, 100_000, 128));
        if (!want(hname)) return;
        using var hq = device.FromHost(Random(rng, hp.QueryElements), new Shape(hp.Q, hp.D));
        using var hm = device.FromHost(Random(rng, hp.MemoryElements), new Shape(hp.P, hp.D));
        using var y = device.Allocate(new Shape(hp.Q, HybridMemoryScoreParams.Outputs));
        using var best = device.Allocate(new Shape(hp.Q), DType.I32);
        progress?.Invoke(hname);
        // The GEMM plus, per logit, a scale, an exp and an add.
        double hflops = hp.Flops + 3.0 * hp.Q * hp.P;
        double hbytes = 4.0 * (hp.QueryElements + hp.MemoryElements + hp.OutputElements + hp.Q);
        results.Add(DeviceTimer.Time(device, "hybrid_memory", hname, hflops, hbytes, () => device.HybridMemoryScore(hp, hq, hm, y, best)));
    }

    private static float[] Random(Random rng, long n)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}
