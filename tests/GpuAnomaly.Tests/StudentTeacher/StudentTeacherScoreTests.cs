using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.StudentTeacher;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Device = GpuAnomaly.Engine.Device;

namespace GpuAnomaly.Tests.StudentTeacher;

/// <summary>
/// Fused Uninformed Students scoring: the cpu kernel, the ILGPU kernel on ilgpu-cpu, the Device op
/// on both devices and the graph op, against the float64 reference, on fresh random shapes
/// (D not a multiple of 4, odd H and W, N 1..3, M 1..4) in the cancellation-prone regime (students
/// close to the normalized teacher). Outputs are poisoned with NaN first.
/// </summary>
public class StudentTeacherScoreTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;

    public StudentTeacherScoreTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    /// <summary>Mostly small images; every fifth one has several pixel blocks and runs on several cores.</summary>
    private static StudentTeacherScoreCase CpuCase(Random rng, int i) =>
        StudentTeacherScoreCase.RandomShape(rng, i % 5 == 4 ? 61 : 23);

    /// <summary>The emulator runs each pixel's thread in turn: at most ~200 pixels and 70 channels.</summary>
    private static StudentTeacherScoreCase EmulatorCase(Random rng) => StudentTeacherScoreCase.RandomShape(rng, 9, maxD: 70);

    [Fact]
    public void CpuKernel_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 50; i++)
        {
            var c = CpuCase(rng, i);
            bool withEv = i % 3 != 0; // e and v also optional: empty spans are not written
            var score = Poisoned(c.P.OutputElements);
            var e = withEv ? Poisoned(c.P.OutputElements) : [];
            var v = withEv ? Poisoned(c.P.OutputElements) : [];
            StudentTeacherScoreCpu.Forward(c.P, c.Teacher, c.Students, c.Mu, c.Sigma, score, e, v);
            c.Check(score, withEv ? e : null, withEv ? v : null, $"seed {seed}, case {i}, cpu kernel");
        }
    }

    [Fact]
    public void IlgpuKernel_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var kernels = new StudentTeacherScoreGpu(_ilgpu.Accelerator);
        var acc = _ilgpu.Accelerator;
        for (int i = 0; i < 6; i++)
        {
            var c = EmulatorCase(rng);
            bool withEv = i % 3 != 0;
            using var t = acc.Allocate1D(c.Teacher);
            using var s = acc.Allocate1D(c.Students);
            using var mu = acc.Allocate1D(c.Mu);
            using var sigma = acc.Allocate1D(c.Sigma);
            using var score = acc.Allocate1D(Poisoned(c.P.OutputElements));
            using var e = acc.Allocate1D(Poisoned(c.P.OutputElements));
            using var v = acc.Allocate1D(Poisoned(c.P.OutputElements));
            kernels.Forward(c.P, t.View, s.View, mu.View, sigma.View, score.View, withEv ? e.View : default, withEv ? v.View : default);
            acc.Synchronize();
            c.Check(score.GetAsArray1D(), withEv ? e.GetAsArray1D() : null, withEv ? v.GetAsArray1D() : null, $"seed {seed}, case {i}, ilgpu kernel");
            if (!withEv) Assert.True(float.IsNaN(e.GetAsArray1D()[0]), "e was written though its view was empty");
        }
    }

    [Fact]
    public void CpuDevice_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var device = new CpuDevice();
        for (int i = 0; i < 50; i++) RunDevice(device, CpuCase(rng, i), stacked: i % 2 == 0, $"seed {seed}, case {i}");
    }

    [Fact]
    public void IlgpuDevice_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 4; i++) RunDevice(_ilgpu, EmulatorCase(rng), stacked: i % 2 == 0, $"seed {seed}, case {i}");
    }

    [Fact]
    public void GraphOp_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        using var cpu = new CpuDevice();
        for (int i = 0; i < 8; i++) RunGraph(cpu, CpuCase(rng, i), $"seed {seed}, case {i}");
        for (int i = 0; i < 2; i++) RunGraph(_ilgpu, EmulatorCase(rng), $"seed {seed}, ilgpu case {i}");
    }

    [Fact]
    public void BadArguments_Throw()
    {
        var ok = StudentTeacherScoreParams.Create(1, 5, 3, 3, 2);
        ok.Validate();
        foreach (var bad in new[] { ok with { M = 0 }, ok with { M = 5 }, ok with { D = 0 }, ok with { EStd = 0 }, ok with { VStd = -1 }, ok with { VStd = float.NaN } })
        {
            var ex = Assert.Throws<ArgumentException>(() => bad.Validate());
            Assert.Contains("student_teacher_score", ex.Message);
        }
        float[] t = new float[45], s = new float[90], mu = new float[5], score = new float[9];
        Assert.Throws<ArgumentException>(() => StudentTeacherScoreCpu.Forward(ok, t, s.AsSpan(1), mu, mu, score, default, default));
        Assert.Throws<ArgumentException>(() => StudentTeacherScoreCpu.Forward(ok, t, s, mu.AsSpan(1), mu, score, default, default));
        Assert.Throws<ArgumentException>(() => StudentTeacherScoreCpu.Forward(ok, t, s, mu, mu, score, new float[8], default));

        foreach (Device device in new Device[] { new CpuDevice(), _ilgpu })
        {
            using var tt = device.Allocate(new Shape(1, 5, 3, 3));
            using var ts = device.Allocate(new Shape(2, 1, 5, 3, 3));
            using var tmu = device.Allocate(new Shape(5));
            using var tscore = device.Allocate(new Shape(1, 3, 3));
            using var wrong = device.Allocate(new Shape(10));
            var ex = Assert.Throws<ArgumentException>(() => device.StudentTeacherScore(ok, tt, ts, tmu, wrong, tscore));
            Assert.Contains("sigma", ex.Message);
            Assert.Throws<ArgumentException>(() => device.StudentTeacherScore(ok, tt, [tt], tmu, tmu, tscore));
            Assert.Throws<ArgumentException>(() => device.StudentTeacherScore(ok, tt, ts, tmu, tmu, tscore, e: wrong));
        }

        var g = new GraphBuilder();
        var gt = g.Input("t", new Shape(1, 5, 3, 3));
        var gmu = g.Constant("mu", new float[5], new Shape(5));
        Assert.Throws<ShapeMismatchException>(() => g.StudentTeacherScore(gt, [g.Input("s", new Shape(1, 5, 3, 4))], gmu, gmu));
        Assert.Throws<ShapeMismatchException>(() => g.StudentTeacherScore(gt, [], gmu, gmu));
        Assert.Throws<ShapeMismatchException>(() => g.StudentTeacherScore(gt, [gt, gt, gt, gt, gt], gmu, gmu));
    }

    private static void RunDevice(Device device, StudentTeacherScoreCase c, bool stacked, string context)
    {
        var p = c.P;
        var one = new Shape(p.N, p.D, p.H, p.W);
        using var t = device.FromHost(c.Teacher, one);
        using var mu = device.FromHost(c.Mu, new Shape(p.D));
        using var sigma = device.FromHost(c.Sigma, new Shape(p.D));
        var outShape = new Shape(p.N, p.H, p.W);
        using var score = device.FromHost(Poisoned(p.OutputElements), outShape);
        using var e = device.FromHost(Poisoned(p.OutputElements), outShape);
        using var v = device.FromHost(Poisoned(p.OutputElements), outShape);
        if (stacked)
        {
            using var s = device.FromHost(c.Students, new Shape(p.M, p.N, p.D, p.H, p.W));
            device.StudentTeacherScore(p, t, s, mu, sigma, score, e, v);
            device.Synchronize();
        }
        else
        {
            var students = Enumerable.Range(0, p.M).Select(i => device.FromHost(c.Student(i), one)).ToArray();
            device.StudentTeacherScore(p, t, students, mu, sigma, score, e, v);
            device.Synchronize();
            foreach (var s in students) s.Dispose();
        }
        c.Check(score.ToArray(), e.ToArray(), v.ToArray(), $"{context}, {device.Name} device, stacked={stacked}");
    }

    private static void RunGraph(Device device, StudentTeacherScoreCase c, string context)
    {
        var p = c.P;
        var one = new Shape(p.N, p.D, p.H, p.W);
        var g = new GraphBuilder();
        var teacher = g.Input("teacher", one);
        var students = Enumerable.Range(0, p.M).Select(i => g.Input($"student{i}", one)).ToArray();
        var score = g.StudentTeacherScore(teacher, students, g.Constant("mu", c.Mu, new Shape(p.D)), g.Constant("sigma", c.Sigma, new Shape(p.D)),
            p.EMean, p.EStd, p.VMean, p.VStd);
        Assert.Equal(new Shape(p.N, p.H, p.W), score.Shape);
        g.Output("score", score);
        using var exec = new Executor(g.Build(), device);
        var inputs = new List<(string, float[])> { ("teacher", c.Teacher) };
        for (int i = 0; i < p.M; i++) inputs.Add(($"student{i}", c.Student(i)));
        var outputs = exec.RunToHost([.. inputs]);
        c.Check(outputs["score"], null, null, $"{context}, {device.Name} graph");
    }

    private static float[] Poisoned(long n)
    {
        var a = new float[n];
        KernelLab.Poison(a);
        return a;
    }
}
