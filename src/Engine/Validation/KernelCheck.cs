using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Elementwise;
using GpuAnomaly.Kernels.Pool;
using GpuAnomaly.Kernels.StudentTeacher;

namespace GpuAnomaly.Engine.Validation;

/// <summary>One kernel run against its float64 reference.</summary>
public sealed record CheckResult(string Kernel, string Shape, double RelL2, double Tolerance)
{
    public bool Passed => RelL2 <= Tolerance; // NaN compares false: it never passes
}

/// <summary>
/// The kernel lab on any device, for devices CI does not have (`gpuanomaly check --device cuda`):
/// fresh random shapes and inputs, poisoned outputs, every kernel variant against the float64
/// reference with the relative L2 error. The unit tests do the same on cpu and ilgpu-cpu.
/// Shapes stay small on ilgpu-cpu, whose emulator costs ~1-2 us per GPU thread; elsewhere they are
/// realistic, bounded so that the float64 reference of one case stays well under a second.
/// The op families beyond the CNN ones live in the other KernelCheck.*.cs files.
/// </summary>
public static partial class KernelCheck
{
    public const double Tolerance = 1e-5;

    public static List<CheckResult> Run(Device device, int cases, int seed, Action<string>? progress = null)
    {
        var rng = new Random(seed);
        var results = new List<CheckResult>();
        bool small = device.Name == "ilgpu-cpu";
        for (int i = 0; i < cases; i++)
        {
            var p = RandomConv(rng, small);
            progress?.Invoke($"conv2d {p}");
            var x = Floats(rng, p.InputElements);
            var w = Floats(rng, p.WeightElements);
            var b = Floats(rng, p.COut);
            var expected = new double[p.OutputElements];
            Conv2dReference.Forward(p, x, w, p.HasBias != 0 ? b : default, expected);
            using var xt = device.FromHost(x, new Shape(x.Length));
            using var wt = device.FromHost(w, new Shape(w.Length));
            using var bt = device.FromHost(b, new Shape(b.Length));
            var variants = new List<(string, Action<Tensor>)> { ("conv2d", y => device.Conv2d(p, xt, wt, bt, y)) };
            if (device is IlgpuDevice gpu)
            {
                variants.Add(("conv2d.direct", y => gpu.ConvKernels.Direct(p, xt.View<float>(), wt.View<float>(), p.HasBias != 0 ? bt.View<float>() : default, y.View<float>())));
                variants.Add(("conv2d.implicit_gemm", y => gpu.ConvKernels.ImplicitGemm(p, xt.View<float>(), wt.View<float>(), p.HasBias != 0 ? bt.View<float>() : default, y.View<float>())));
                variants.Add(("conv2d.implicit_gemm_large", y => gpu.ConvKernels.ImplicitGemmLarge(p, xt.View<float>(), wt.View<float>(), p.HasBias != 0 ? bt.View<float>() : default, y.View<float>())));
                variants.Add(("conv2d.direct_wide", y => gpu.ConvKernels.DirectWide(p, xt.View<float>(), wt.View<float>(), p.HasBias != 0 ? bt.View<float>() : default, y.View<float>())));
            }
            foreach (var (name, run) in variants)
                results.Add(new(name, p.ToString(), RelL2(Poisoned(device, p.OutputElements, run), expected), Tolerance));
        }
        for (int i = 0; i < cases; i++)
        {
            var p = RandomPool(rng, small);
            progress?.Invoke($"pool2d {p}");
            var x = Floats(rng, p.InputElements);
            var expected = new double[p.OutputElements];
            Pool2dReference.Forward(p, x, expected);
            using var xt = device.FromHost(x, new Shape(x.Length));
            results.Add(new("pool2d", p.ToString(), RelL2(Poisoned(device, p.OutputElements, y => device.Pool2d(p, xt, y)), expected), Tolerance));
        }
        for (int i = 0; i < cases; i++)
        {
            var p = StudentTeacherScoreParams.Create(rng.Next(1, 3), rng.Next(1, small ? 20 : 140), rng.Next(1, small ? 9 : 40),
                rng.Next(1, small ? 9 : 40), rng.Next(1, StudentTeacherScoreParams.MaxStudents + 1),
                (float)rng.NextDouble(), 0.5f + (float)rng.NextDouble(), (float)rng.NextDouble(), 0.5f + (float)rng.NextDouble());
            progress?.Invoke($"student_teacher_score {p}");
            // Realistic data: students near the normalized teacher, so v is small (the cancellation-prone regime).
            var teacher = Floats(rng, p.DescriptorElements);
            var mu = Floats(rng, p.D);
            var sigma = Floats(rng, p.D).Select(x => 0.5f + Math.Abs(x)).ToArray();
            var students = new float[p.StudentsElements];
            int plane = p.H * p.W;
            for (long j = 0; j < students.Length; j++)
            {
                long t = j % p.DescriptorElements;
                int d = (int)(t / plane % p.D);
                students[j] = (teacher[t] - mu[d]) / sigma[d] + 0.05f * (float)(rng.NextDouble() * 2 - 1);
            }
            var es = new double[p.OutputElements];
            var ee = new double[p.OutputElements];
            var ev = new double[p.OutputElements];
            StudentTeacherScoreReference.Forward(p, teacher, students, mu, sigma, es, ee, ev);
            using var tt = device.FromHost(teacher, new Shape(p.N, p.D, p.H, p.W));
            using var ts = device.FromHost(students, new Shape(p.M, p.N, p.D, p.H, p.W));
            using var tm = device.FromHost(mu, new Shape(p.D));
            using var tg = device.FromHost(sigma, new Shape(p.D));
            using var te = device.Allocate(new Shape(p.N, p.H, p.W));
            using var tv = device.Allocate(new Shape(p.N, p.H, p.W));
            var score = Poisoned(device, p.OutputElements, y => device.StudentTeacherScore(p, tt, ts, tm, tg, y, te, tv));
            string shape = p.ToString();
            var (me, mv, ms) = StudentTeacherMagnitudes(p, teacher, students, mu, sigma);
            results.Add(new("student_teacher_score", shape, RelL2(score, es, ms), Tolerance));
            results.Add(new("student_teacher_score.e", shape, RelL2(te.ToArray(), ee, me), Tolerance));
            results.Add(new("student_teacher_score.v", shape, RelL2(tv.ToArray(), ev, mv), Tolerance));
        }
        for (int i = 0; i < cases; i++)
        {
            int n = rng.Next(1, small ? 3000 : 1 << 20);
            float slope = (float)rng.NextDouble();
            var a = Floats(rng, n);
            var bb = Floats(rng, n);
            using var at = device.FromHost(a, new Shape(n));
            using var bt = device.FromHost(bb, new Shape(n));
            var e1 = new double[n];
            ElementwiseReference.LeakyRelu(a, slope, e1);
            results.Add(new("leaky_relu", $"{n}", RelL2(Poisoned(device, n, y => device.LeakyRelu(at, slope, y)), e1), Tolerance));
            ElementwiseReference.Relu(a, e1);
            results.Add(new("relu", $"{n}", RelL2(Poisoned(device, n, y => device.Relu(at, y)), e1), Tolerance));
            ElementwiseReference.Add(a, bb, e1);
            results.Add(new("add", $"{n}", RelL2(Poisoned(device, n, y => device.Add(at, bt, y)), e1), Tolerance));
        }
        CheckTernary(device, rng, cases, small, results, progress);
        CheckTransformer(device, rng, cases, small, results, progress);
        CheckWindowAttention(device, rng, cases, small, results, progress);
        CheckVim(device, rng, cases, small, results, progress);
        CheckCoreset(device, rng, cases, small, results, progress);
        CheckKnn(device, rng, cases, small, results, progress);
        return results;
    }

    public static Conv2dParams RandomConv(Random rng, bool small)
    {
        while (true)
        {
            int groups = rng.Next(4) switch { 0 => 2, 1 => -1, _ => 1 }; // -1: depthwise
            int cin = rng.Next(1, small ? 6 : 70), cout = rng.Next(1, small ? 9 : 140);
            if (groups == -1) { groups = cin; cout = cin * rng.Next(1, 3); }
            else if (groups == 2) { cin *= 2; cout *= 2; }
            int k = rng.Next(1, 8), kw = rng.Next(4) == 0 ? rng.Next(1, 8) : k;
            int dil = rng.Next(3) == 0 ? rng.Next(2, 4) : 1, stride = rng.Next(3) == 0 ? rng.Next(2, 4) : 1;
            var p = new Conv2dParams
            {
                N = rng.Next(1, small ? 3 : 5), CIn = cin, H = rng.Next(1, small ? 14 : 60), W = rng.Next(1, small ? 14 : 60),
                COut = cout, KH = k, KW = kw, StrideH = stride, StrideW = rng.Next(2) == 0 ? stride : rng.Next(1, 4),
                PadTop = rng.Next(0, 4), PadLeft = rng.Next(0, 4), PadBottom = rng.Next(0, 4), PadRight = rng.Next(0, 4),
                DilH = dil, DilW = dil, Groups = groups, HasBias = rng.Next(2),
                Act = (Activation)rng.Next(3), Slope = (float)rng.NextDouble() * 0.3f,
            };
            try { p.Validate(); } catch (ArgumentException) { continue; }
            if (p.OutputElements * p.CInPerGroup * p.KH * p.KW > (small ? 400_000 : 400_000_000)) continue;
            return p;
        }
    }

    public static Pool2dParams RandomPool(Random rng, bool small)
    {
        while (true)
        {
            var kind = (PoolKind)rng.Next(2);
            int k = rng.Next(1, 6), dil = kind == PoolKind.Max && rng.Next(3) == 0 ? rng.Next(2, 4) : 1;
            var p = Pool2dParams.Create(kind, rng.Next(1, 4), rng.Next(1, small ? 5 : 64), rng.Next(1, small ? 16 : 90), rng.Next(1, small ? 16 : 90),
                k, rng.Next(1, 4), rng.Next(0, k / 2 + 1), dil, rng.Next(2) == 0);
            p.KW = rng.Next(3) == 0 ? rng.Next(1, 6) : k;
            p.PadW = rng.Next(0, p.KW / 2 + 1);
            try { p.Validate(); } catch (ArgumentException) { continue; }
            return p;
        }
    }

    private static float[] Poisoned(Device device, long n, Action<Tensor> run)
    {
        using var y = device.Allocate(new Shape((int)n));
        var poison = new float[n];
        poison.AsSpan().Fill(float.NaN);
        y.CopyFrom(poison);
        run(y);
        device.Synchronize();
        return y.ToArray();
    }

    /// <summary>Uniform in [-scale, scale], no exact zeros.</summary>
    private static float[] Floats(Random rng, long n, float scale = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++)
        {
            float v;
            do v = (float)(rng.NextDouble() * 2 - 1) * scale; while (v == 0f);
            a[i] = v;
        }
        return a;
    }

    /// <summary>
    /// ||a - e|| / ||magnitude||, magnitude being the same computation on absolute values: the error against the size of
    /// the summed terms, for outputs that can cancel to near zero. NaN or infinity in <paramref name="actual"/> gives +infinity.
    /// </summary>
    public static double RelL2(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, ReadOnlySpan<double> magnitude)
    {
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) return double.PositiveInfinity;
            double d = actual[i] - expected[i];
            num += d * d;
            den += magnitude[i] * magnitude[i];
        }
        return den == 0 ? (num == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(num / den);
    }

    /// <summary>
    /// The size of what cancels in student_teacher_score, per pixel: e = sum_d (m - y)^2 with m near y, so float32 gets
    /// (m - y) only to eps * (|m| + |y|) and e to about 2 eps * sum_d |m - y| (|m| + |y|); v = mean ||s||^2 - ||m||^2
    /// cancels down from the sum of both terms. Relative to ||e|| alone, a pixel with a tiny e (D = 1, students close
    /// to the teacher) fails a correct kernel.
    /// </summary>
    private static (double[] E, double[] V, double[] Score) StudentTeacherMagnitudes(in StudentTeacherScoreParams p,
        float[] teacher, float[] students, float[] mu, float[] sigma)
    {
        int hw = p.H * p.W;
        var e = new double[p.OutputElements];
        var v = new double[p.OutputElements];
        var s = new double[p.OutputElements];
        for (int n = 0; n < p.N; n++)
        for (int px = 0; px < hw; px++)
        {
            double em = 0, sumSq = 0, mbarSq = 0;
            for (int d = 0; d < p.D; d++)
            {
                long at = ((long)n * p.D + d) * hw + px;
                double y = (teacher[at] - (double)mu[d]) / sigma[d];
                double m = 0;
                for (int i = 0; i < p.M; i++)
                {
                    double x = students[i * p.DescriptorElements + at];
                    m += x;
                    sumSq += x * x;
                }
                m /= p.M;
                em += Math.Abs(m - y) * (Math.Abs(m) + Math.Abs(y));
                mbarSq += m * m;
            }
            int o = n * hw + px;
            e[o] = em;
            v[o] = sumSq / p.M + mbarSq;
            s[o] = (em + Math.Abs(p.EMean)) / p.EStd + (v[o] + Math.Abs(p.VMean)) / p.VStd;
        }
        return (e, v, s);
    }

    private static float[] Abs(float[] a) => a.Select(MathF.Abs).ToArray();

    /// <summary>||a - e|| / ||e||; NaN or infinity in <paramref name="actual"/> gives +infinity.</summary>
    public static double RelL2(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected) => RelL2(actual, expected, expected);

    /// <summary>
    /// ||a - e|| / ||e|| of integer results (A8 accumulators): 0 exactly when every value matches, so
    /// these rows use tolerance 0.
    /// </summary>
    public static double RelL2(ReadOnlySpan<int> actual, ReadOnlySpan<int> expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        return den == 0 ? (num == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(num / den);
    }

    private static Tensor Upload(Device device, float[] data) => device.FromHost(data, new Shape(data.Length));
}
