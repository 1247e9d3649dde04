using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Ternary;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Engine.Validation;

public static partial class KernelCheck
{
    /// <summary>
    /// TernaryLinear on both sides of <see cref="TernaryLinearGpu.GemvMaxTokens"/> (the GEMV and the tiled GEMM on
    /// ILGPU devices; on cpu the names only tell the token counts apart) and TernaryConv2d, A32 and A8.
    /// A8's int32 accumulators are compared exactly where a device exposes them: through the kernel classes on
    /// ILGPU devices (the float output alone could hide an off-by-one in a large sum), and the cpu kernel's for linear.
    /// </summary>
    private static void CheckTernary(Device device, Random rng, int cases, bool small, List<CheckResult> results, Action<string>? progress)
    {
        var gpu = device as IlgpuDevice;
        // The device's own instances: the accumulator rows test the kernels the float rows ran, compiled once.
        var linearKernels = gpu?.TernaryKernels;
        var convKernels = gpu?.TernaryConvKernels;
        for (int i = 0; i < cases; i++)
        {
            foreach (var act in new[] { TernaryActivations.A32, TernaryActivations.A8 })
            foreach (bool gemm in new[] { false, true })
            {
                var p = RandomTernaryLinear(rng, i, gemm, act, small);
                string kernel = $"ternary_linear.{Name(act)}.{(gemm ? "gemm" : "gemv")}";
                progress?.Invoke($"{kernel} {p}");
                // Activations from 0.01 to 100: A8's absmax scale must not depend on the magnitude.
                var x = Floats(rng, p.InputElements, MathF.Pow(10, rng.Next(-2, 3)));
                var w = TernaryValues(rng, (long)p.N * p.K);
                var scale = Gammas(rng, p.ScaleElements);
                var bias = p.HasBias != 0 ? Floats(rng, p.N) : [];
                var expected = TernaryLinearReference.Forward(p, x, w, scale, bias);
                var packed = TernaryPacking.Pack(w, p.N, p.K);
                using var xt = Upload(device, x);
                using var wt = UploadTernary(device, packed, new Shape(p.N, p.K));
                using var st = Upload(device, scale);
                using var bt = p.HasBias != 0 ? Upload(device, bias) : null;
                // Against the size of the summed terms (the reference on absolute values): a single output of +-x terms can
                // cancel far below them, and plain relative L2 would then fail float32's honest rounding (~1 in 300 runs).
                var magnitude = TernaryLinearReference.Forward(p, Abs(x), w.Select(v => (sbyte)Math.Abs(v)).ToArray(), Abs(scale), Abs(bias));
                results.Add(new(kernel, p.ToString(), RelL2(Poisoned(device, p.OutputElements, y => device.TernaryLinear(p, xt, wt, st, bt, y)), expected, magnitude), Tolerance));
                if (act != TernaryActivations.A8) continue;
                var acc = TernaryLinearReference.AccumulateA8(p, x, w, out _);
                int[]? got = null;
                if (linearKernels is not null)
                {
                    using var ab = gpu!.Accelerator.Allocate1D(PoisonedInts(acc.Length));
                    linearKernels.AccumulateA8(p, xt.View<float>(), wt.View<uint>(), ab.View, gemm);
                    device.Synchronize();
                    got = ab.GetAsArray1D();
                }
                else if (device is CpuDevice) got = TernaryLinearCpu.AccumulateA8(p, x, packed, out _);
                if (got is not null) results.Add(new(kernel + ".acc", p.ToString(), RelL2(got, acc), 0));
            }
        }
        for (int i = 0; i < cases; i++)
        {
            var conv = RandomTernaryConv(rng, small);
            foreach (var act in new[] { TernaryActivations.A32, TernaryActivations.A8 })
            {
                var p = TernaryConv2dParams.Create(conv, rng.Next(2) == 0 ? TernaryScale.Row : TernaryScale.Tensor, act);
                var c = p.Conv;
                string kernel = $"ternary_conv2d.{Name(act)}";
                progress?.Invoke($"{kernel} {p}");
                var x = Floats(rng, c.InputElements);
                var w = TernaryValues(rng, c.WeightElements);
                var scale = Gammas(rng, p.ScaleElements);
                var bias = c.HasBias != 0 ? Floats(rng, c.COut) : [];
                var expected = TernaryConv2dReference.Forward(p, x, w, scale, bias);
                using var xt = Upload(device, x);
                using var wt = UploadTernary(device, TernaryPacking.Pack(w, c.COut, p.K), new Shape(c.COut, c.CInPerGroup, c.KH, c.KW));
                using var st = Upload(device, scale);
                using var bt = c.HasBias != 0 ? Upload(device, bias) : null;
                void Run(Tensor y) => device.TernaryConv2d(p, xt, wt, st, bt, y);
                results.Add(new(kernel, p.ToString(), RelL2(Poisoned(device, c.OutputElements, Run), expected), Tolerance));
                if (device is CpuDevice)
                {
                    // Constant weights (a graph's) take the cpu device's decoded-and-packed cache instead.
                    wt.MarkConstant();
                    results.Add(new(kernel + ".cached", p.ToString(), RelL2(Poisoned(device, c.OutputElements, Run), expected), Tolerance));
                }
                if (act == TernaryActivations.A8 && convKernels is not null)
                {
                    var acc = TernaryConv2dReference.AccumulateA8(p, x, w, out _);
                    using var ab = gpu!.Accelerator.Allocate1D(PoisonedInts(acc.Length));
                    convKernels.AccumulateA8(p, xt.View<float>(), wt.View<uint>(), ab.View);
                    device.Synchronize();
                    results.Add(new(kernel + ".acc", p.ToString(), RelL2(ab.GetAsArray1D(), acc), 0));
                }
            }
        }
    }

    private static string Name(TernaryActivations act) => act == TernaryActivations.A8 ? "a8" : "a32";

    /// <summary>
    /// N odd (with a second 64-row tile now and then); K below one 16-weight word, whole words, or (mostly) neither a
    /// multiple of 16 nor of 32, up to several K strides of the GEMV's warps.
    /// </summary>
    private static TernaryLinearParams RandomTernaryLinear(Random rng, int i, bool gemm, TernaryActivations act, bool small)
    {
        while (true)
        {
            int m = gemm ? rng.Next(TernaryLinearGpu.GemvMaxTokens + 1, small ? 70 : 300) : rng.Next(1, TernaryLinearGpu.GemvMaxTokens + 1);
            int n = 2 * rng.Next(1, small ? 40 : 600) - 1 + (small && rng.Next(4) == 0 ? 64 : 0);
            int k = (i % 4) switch
            {
                0 => rng.Next(1, 16),
                1 => 16 * rng.Next(1, small ? 12 : 80),
                _ => rng.Next(17, small ? 800 : 4000),
            };
            if (i % 4 > 1 && k % 16 == 0) k++;
            var p = TernaryLinearParams.Create(m, n, k, rng.Next(2) == 0 ? TernaryScale.Row : TernaryScale.Tensor, rng.Next(2) == 0, act);
            if ((double)m * n * k <= (small ? 400_000 : 40_000_000)) return p;
        }
    }

    /// <summary>The float conv's random shapes (groups, depthwise, stride, dilation, padding, activations), bounded for the float64 reference.</summary>
    private static Conv2dParams RandomTernaryConv(Random rng, bool small)
    {
        while (true)
        {
            var c = RandomConv(rng, small);
            if (c.OutputElements * c.CInPerGroup * c.KH * c.KW <= (small ? 200_000 : 40_000_000)) return c;
        }
    }

    private static sbyte[] TernaryValues(Random rng, long n)
    {
        var w = new sbyte[n];
        for (long i = 0; i < n; i++) w[i] = (sbyte)(rng.Next(3) - 1);
        return w;
    }

    /// <summary>Positive scales around BitNet's magnitudes (gamma = mean |W|).</summary>
    private static float[] Gammas(Random rng, int n)
    {
        var s = new float[n];
        for (int i = 0; i < n; i++) s[i] = (float)(0.01 + rng.NextDouble() * 0.2);
        return s;
    }

    private static int[] PoisonedInts(int n)
    {
        var a = new int[n];
        a.AsSpan().Fill(int.MinValue);
        return a;
    }

    private static Tensor UploadTernary(Device device, uint[] packed, Shape shape)
    {
        var t = device.Allocate(shape, DType.Ternary2, "check ternary weight");
        device.CopyFromHost(MemoryMarshal.AsBytes(packed.AsSpan()), t);
        return t;
    }
}
