using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Validation;
using GpuAnomaly.Kernels.Ternary;
using GpuAnomaly.Kernels.Transformer;
using Xunit;
using Xunit.Abstractions;

namespace GpuAnomaly.Tests.Cli;

/// <summary>
/// The engine of `gpuanomaly check`, which a session with a GPU runs to validate every kernel: every Device op must
/// appear in its results (on cpu through the command, <see cref="CliTests"/>; on ilgpu-cpu here) and pass, and its
/// comparisons must be able to fail.
/// </summary>
public class KernelCheckTests(IlgpuCpuFixture fixture, ITestOutputHelper output) : IClassFixture<IlgpuCpuFixture>
{
    /// <summary>
    /// The kernels every device reports. Written out, not derived from KernelCheck, so that an op family dropped from
    /// KernelCheck.Run fails here.
    /// </summary>
    internal static readonly string[] EveryDevice =
    [
        "conv2d", "pool2d", "student_teacher_score", "student_teacher_score.e", "student_teacher_score.v", "leaky_relu", "relu", "add",
        "ternary_linear.a32.gemv", "ternary_linear.a32.gemm", "ternary_linear.a8.gemv", "ternary_linear.a8.gemm",
        "ternary_linear.a8.gemv.acc", "ternary_linear.a8.gemm.acc", "ternary_conv2d.a32", "ternary_conv2d.a8",
        "linear.gemv", "linear.gemm", "layer_norm", "gelu", "dwconv", "token_mean", "tokens_from_nchw",
        "window_attention", "window_attention.shifted", "window_attention.sparse", "window_attention.global",
        "vim_score", "vim_score.vim_probability", "vim_score.vim_score", "vim_score.msp", "vim_score.max_logit",
        "vim_score.energy", "vim_score.residual", "knn", "knn.indices", "hybrid_memory_score", "hybrid_memory_update",
    ];

    /// <summary>The cpu device's constant-weight caches.</summary>
    internal static readonly string[] CpuOnly = ["ternary_conv2d.a32.cached", "ternary_conv2d.a8.cached", "linear.gemv.cached", "linear.gemm.cached"];

    /// <summary>The float conv's GPU variants and the ternary conv's exact A8 accumulators.</summary>
    internal static readonly string[] IlgpuOnly =
        ["conv2d.direct", "conv2d.implicit_gemm", "conv2d.implicit_gemm_large", "conv2d.direct_wide", "ternary_conv2d.a8.acc"];

    [Fact]
    public void IlgpuCpu_CoversEveryOp_AndPasses()
    {
        KernelLab.NewRng(out int seed);
        var sw = Stopwatch.StartNew();
        var results = KernelCheck.Run(fixture.Device, cases: 1, seed);
        output.WriteLine($"{results.Count} results in {sw.Elapsed.TotalSeconds:F1} s, seed {seed}");
        var kernels = results.Select(r => r.Kernel).ToHashSet();
        foreach (var name in EveryDevice.Concat(IlgpuOnly))
            Assert.True(kernels.Contains(name), $"ilgpu-cpu: no result for {name}");
        Assert.DoesNotContain(CpuOnly, kernels.Contains);
        var failed = results.Where(r => !r.Passed).Select(r => $"{r.Kernel} {r.Shape}: {r.RelL2:E2} > {r.Tolerance:E0}").ToList();
        Assert.True(failed.Count == 0, $"seed {seed}:\n{string.Join("\n", failed)}");
    }

    /// <summary>A kernel that skips its bias (run as the op without one) must fail the comparison the check makes.</summary>
    [Fact]
    public void WrongOutput_FailsTheComparison()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var cpu = new CpuDevice();
        var p = LinearParams.Create(7, 37, 11);
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var w = KernelLab.RandomFloats(rng, p.WeightElements);
        var b = KernelLab.RandomFloats(rng, p.N);
        var expected = LinearReference.Forward(p, x, w, b);
        using var xt = cpu.FromHost(x, new Shape(p.M, p.K));
        using var wt = cpu.FromHost(w, new Shape(p.N, p.K));
        using var bt = cpu.FromHost(b, new Shape(p.N));
        using var yt = cpu.Allocate(new Shape(p.M, p.N));
        cpu.Linear(p, xt, wt, bt, yt);
        Assert.True(KernelCheck.RelL2(yt.ToArray(), expected) <= KernelCheck.Tolerance, $"seed {seed}: the correct output fails");
        var noBias = p;
        noBias.HasBias = 0;
        cpu.Linear(noBias, xt, wt, null, yt);
        var skipped = new CheckResult("linear", p.ToString(), KernelCheck.RelL2(yt.ToArray(), expected), KernelCheck.Tolerance);
        Assert.False(skipped.Passed, $"seed {seed}: a missing bias passes ({skipped.RelL2:E2})");

        var y = yt.ToArray();
        y[^1] = float.NaN;
        Assert.False(new CheckResult("linear", "", KernelCheck.RelL2(y, expected), KernelCheck.Tolerance).Passed);
    }

    /// <summary>A8 accumulators are compared exactly: one accumulator off by one among thousands fails.</summary>
    [Fact]
    public void AccumulatorOffByOne_Fails()
    {
        var rng = KernelLab.NewRng(out int seed);
        var p = TernaryLinearParams.Create(9, 301, 533, activations: TernaryActivations.A8);
        var x = KernelLab.RandomFloats(rng, p.InputElements);
        var w = new sbyte[(long)p.N * p.K];
        for (int i = 0; i < w.Length; i++) w[i] = (sbyte)(rng.Next(3) - 1);
        var acc = TernaryLinearReference.AccumulateA8(p, x, w, out _);
        Assert.Equal(0, KernelCheck.RelL2(TernaryLinearCpu.AccumulateA8(p, x, TernaryPacking.Pack(w, p.N, p.K), out _), acc));
        var wrong = (int[])acc.Clone();
        wrong[rng.Next(wrong.Length)]++;
        Assert.False(new CheckResult("ternary_linear.a8.gemm.acc", p.ToString(), KernelCheck.RelL2(wrong, acc), 0).Passed, $"seed {seed}");
    }
}
