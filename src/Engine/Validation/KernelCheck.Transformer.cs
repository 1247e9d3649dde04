using GpuAnomaly.Kernels.Transformer;

namespace GpuAnomaly.Engine.Validation;

public static partial class KernelCheck
{
    /// <summary>The transformer block's ops: Linear (GEMV and GEMM token counts), LayerNorm, GELU, DwConv and the token ops.</summary>
    private static void CheckTransformer(Device device, Random rng, int cases, bool small, List<CheckResult> results, Action<string>? progress)
    {
        for (int i = 0; i < cases; i++)
        {
            foreach (bool gemm in new[] { false, true })
            {
                var p = RandomLinear(rng, i, gemm, small);
                string kernel = gemm ? "linear.gemm" : "linear.gemv";
                progress?.Invoke($"{kernel} {p}");
                var x = Floats(rng, p.InputElements);
                var w = Floats(rng, p.WeightElements);
                var bias = p.HasBias != 0 ? Floats(rng, p.N) : [];
                var expected = LinearReference.Forward(p, x, w, bias);
                var magnitude = LinearReference.Forward(p, Abs(x), Abs(w), Abs(bias)); // single outputs can cancel: see RelL2
                using var xt = Upload(device, x);
                using var wt = Upload(device, w);
                using var bt = p.HasBias != 0 ? Upload(device, bias) : null;
                void Run(Tensor y) => device.Linear(p, xt, wt, bt, y);
                results.Add(new(kernel, p.ToString(), RelL2(Poisoned(device, p.OutputElements, Run), expected, magnitude), Tolerance));
                if (device is CpuDevice)
                {
                    // Constant weights (a graph's) take the cpu device's transposed-and-packed cache instead.
                    wt.MarkConstant();
                    results.Add(new(kernel + ".cached", p.ToString(), RelL2(Poisoned(device, p.OutputElements, Run), expected, magnitude), Tolerance));
                }
            }
        }
        for (int i = 0; i < cases; i++)
        {
            var p = LayerNormParams.Create(rng.Next(1, small ? 40 : 4000), rng.Next(1, small ? 130 : 1025));
            progress?.Invoke($"layer_norm {p}");
            // Rows offset from 0, as in the unit tests: a one-pass E[x^2] - mean^2 variance would fail.
            var x = Floats(rng, p.Elements).Select(v => 3f + v).ToArray();
            var w = Floats(rng, p.C);
            var b = Floats(rng, p.C);
            var expected = LayerNormReference.Forward(p, x, w, b);
            using var xt = Upload(device, x);
            using var wt = Upload(device, w);
            using var bt = Upload(device, b);
            results.Add(new("layer_norm", p.ToString(), RelL2(Poisoned(device, p.Elements, y => device.LayerNorm(p, xt, wt, bt, y)), expected), Tolerance));
        }
        for (int i = 0; i < cases; i++)
        {
            int n = rng.Next(1, small ? 3000 : 1 << 20);
            progress?.Invoke($"gelu {n}");
            // [-6, 6]: both tails, where GELU's float erf form cancels.
            var x = Floats(rng, n, 6f);
            var expected = x.Select(v => Gelu.Reference(v)).ToArray();
            using var xt = Upload(device, x);
            results.Add(new("gelu", $"{n}", GeluError(Poisoned(device, n, y => device.Gelu(xt, y)), expected), GeluTolerance));
        }
        for (int i = 0; i < cases; i++)
        {
            var p = RandomDwConv(rng, small);
            progress?.Invoke($"dwconv {p}");
            var x = Floats(rng, p.InputElements);
            var w = Floats(rng, p.WeightElements);
            var bias = p.HasBias != 0 ? Floats(rng, p.C) : [];
            var expected = DwConvReference.Forward(p, x, w, bias);
            using var xt = Upload(device, x);
            using var wt = Upload(device, w);
            using var bt = p.HasBias != 0 ? Upload(device, bias) : null;
            results.Add(new("dwconv", p.ToString(), RelL2(Poisoned(device, p.OutputElements, y => device.DwConv(p, xt, wt, bt, y)), expected), Tolerance));
        }
        for (int i = 0; i < cases; i++)
        {
            var p = TokensParams.Create(rng.Next(1, small ? 4 : 9), rng.Next(1, small ? 50 : 3137), rng.Next(1, small ? 20 : 513));
            progress?.Invoke($"token_mean {p}");
            var x = Floats(rng, p.Elements);
            using var xt = Upload(device, x);
            results.Add(new("token_mean", p.ToString(), RelL2(Poisoned(device, p.PooledElements, y => device.TokenMean(p, xt, y)), TokensReference.Mean(p, x)), Tolerance));
            // A pure permutation: anything but an exact copy is a bug.
            results.Add(new("tokens_from_nchw", p.ToString(), RelL2(Poisoned(device, p.Elements, y => device.TokensFromNchw(p, xt, y)), TokensReference.FromNchw(p, x)), 0));
        }
    }

    /// <summary>
    /// GeluTests' metric and tolerance: relative L2 &lt;= 1e-6 with the reference's norm floored at 1 per element.
    /// Below x = -4 GELU is under 1e-4 and comes from 1 + erf(x / sqrt 2) in float, which cancels (as PyTorch's float
    /// GELU does): there only the absolute error (~2e-7) can be promised, and a plain relative L2 of a few tail
    /// elements would fail a correct kernel.
    /// </summary>
    private const double GeluTolerance = 1e-6;

    private static double GeluError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) return double.PositiveInfinity;
            double d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        return Math.Sqrt(num) / Math.Max(Math.Sqrt(den), Math.Sqrt(actual.Length));
    }

    /// <summary>K below, at and (mostly) off the GEMM's 16-wide k tiles; GELU epilogue and no bias now and then.</summary>
    private static LinearParams RandomLinear(Random rng, int i, bool gemm, bool small)
    {
        while (true)
        {
            int m = gemm ? rng.Next(LinearGpu.GemvMaxM + 1, small ? 70 : 800) : rng.Next(1, LinearGpu.GemvMaxM + 1);
            int k = (i % 3) switch
            {
                0 => rng.Next(1, 16),
                1 => 16 * rng.Next(1, small ? 6 : 64),
                _ => rng.Next(17, small ? 100 : 1500),
            };
            int n = rng.Next(1, small ? 80 : 1500);
            var p = LinearParams.Create(m, k, n, rng.Next(4) != 0, rng.Next(2) == 0 ? Epilogue.Gelu : Epilogue.None);
            if ((double)m * n * k <= (small ? 200_000 : 40_000_000)) return p;
        }
    }

    /// <summary>Kernels 1x1 to 7x7 (non-square, "same" and less padding), maps up to 64 x 64, channels up to 384.</summary>
    private static DwConvParams RandomDwConv(Random rng, bool small)
    {
        while (true)
        {
            int kh = rng.Next(1, small ? 6 : 8), kw = rng.Next(2) == 0 ? kh : rng.Next(1, small ? 6 : 8);
            var p = new DwConvParams
            {
                B = rng.Next(1, small ? 3 : 5), H = rng.Next(kh, small ? 10 : 65), W = rng.Next(kw, small ? 10 : 65),
                C = rng.Next(1, small ? 13 : 385), KH = kh, KW = kw, PadH = rng.Next(0, kh / 2 + 1), PadW = rng.Next(0, kw / 2 + 1),
                HasBias = rng.Next(4) != 0 ? 1 : 0, Act = rng.Next(2) == 0 ? Epilogue.Gelu : Epilogue.None,
            };
            if (p.OutputElements * p.KH * p.KW <= (small ? 100_000 : 40_000_000)) return p;
        }
    }
}
