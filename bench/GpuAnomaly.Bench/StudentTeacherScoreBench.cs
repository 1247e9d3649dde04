using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using GpuAnomaly.Kernels.StudentTeacher;

namespace GpuAnomaly.Bench;

/// <summary>
/// Uninformed Students scoring on the cpu: the fused kernel (teacher and students read once, the
/// score written once) against the same formulas as five separate passes over memory (normalize,
/// students' mean, error, variance, combine), each pass SIMD and spread over the cores. Memory
/// bound: the fused kernel moves (M + 1) * N*D*H*W * 4 bytes plus the score map.
/// Run: dotnet run -c Release --project bench/GpuAnomaly.Bench -- --filter '*StudentTeacherScoreBench*' --job short
/// </summary>
public class StudentTeacherScoreBench
{
    private StudentTeacherScoreParams _p;
    private float[] _teacher = [], _students = [], _mu = [], _sigma = [], _score = [];
    // The unfused sequence's intermediates: y, mbar, squared error, squared deviations [N, D, H, W]; e, v [N, H, W].
    private float[] _y = [], _mbar = [], _err = [], _dev = [], _tmp = [], _e = [], _v = [];

    /// <summary>"N x D x H x W M" (square images).</summary>
    [Params("1x128x256x256 M3", "1x128x64x64 M3")]
    public string Case { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var parts = Case.Split(' ');
        var dims = parts[0].Split('x').Select(int.Parse).ToArray();
        _p = StudentTeacherScoreParams.Create(dims[0], dims[1], dims[2], dims[3], int.Parse(parts[1][1..]), 1f, 2f, 0.5f, 0.25f);
        var rng = new Random(1);
        float[] Random(long n, float offset = 0f)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = offset + (float)(rng.NextDouble() * 2 - 1);
            return a;
        }
        _teacher = Random(_p.DescriptorElements);
        _students = Random(_p.StudentsElements);
        _mu = Random(_p.D);
        _sigma = Random(_p.D, 1.5f);
        _score = new float[_p.OutputElements];
        _y = new float[_p.DescriptorElements];
        _mbar = new float[_p.DescriptorElements];
        _err = new float[_p.DescriptorElements];
        _dev = new float[_p.DescriptorElements];
        _tmp = new float[_p.DescriptorElements];
        _e = new float[_p.OutputElements];
        _v = new float[_p.OutputElements];
    }

    [Benchmark(Baseline = true)]
    public void Unfused()
    {
        var p = _p;
        int hw = p.H * p.W, desc = (int)p.DescriptorElements, planes = p.N * p.D;
        float[] t = _teacher, s = _students, y = _y, mbar = _mbar, err = _err, dev = _dev;
        // 1. y = (T - mu) / sigma
        Parallel.For(0, planes, nd =>
        {
            int d = nd % p.D;
            var plane = new Range(nd * hw, (nd + 1) * hw);
            TensorPrimitives.Subtract(t.AsSpan(plane), _mu[d], y.AsSpan(plane));
            TensorPrimitives.Multiply(y.AsSpan(plane), 1f / _sigma[d], y.AsSpan(plane));
        });
        // 2. mbar = mean_i m_i
        Parallel.For(0, planes, nd =>
        {
            var plane = new Range(nd * hw, (nd + 1) * hw);
            s.AsSpan(plane).CopyTo(mbar.AsSpan(plane));
            for (int i = 1; i < p.M; i++) TensorPrimitives.Add(mbar.AsSpan(plane), s.AsSpan(i * desc + nd * hw, hw), mbar.AsSpan(plane));
            TensorPrimitives.Multiply(mbar.AsSpan(plane), 1f / p.M, mbar.AsSpan(plane));
        });
        // 3. squared error (mbar - y)^2 and 4. squared deviations sum_i (m_i - mbar)^2, per element
        Parallel.For(0, planes, nd =>
        {
            var plane = new Range(nd * hw, (nd + 1) * hw);
            TensorPrimitives.Subtract(mbar.AsSpan(plane), y.AsSpan(plane), err.AsSpan(plane));
            TensorPrimitives.Multiply(err.AsSpan(plane), err.AsSpan(plane), err.AsSpan(plane));
        });
        Parallel.For(0, planes, nd =>
        {
            var plane = new Range(nd * hw, (nd + 1) * hw);
            var tmp = _tmp.AsSpan(plane);
            dev.AsSpan(plane).Clear();
            for (int i = 0; i < p.M; i++)
            {
                TensorPrimitives.Subtract(s.AsSpan(i * desc + nd * hw, hw), mbar.AsSpan(plane), tmp);
                TensorPrimitives.FusedMultiplyAdd(tmp, tmp, dev.AsSpan(plane), dev.AsSpan(plane));
            }
        });
        // e, v: sums over the channels; 5. combine
        const int Chunk = 4096;
        int chunks = (hw + Chunk - 1) / Chunk;
        Parallel.For(0, p.N * chunks, task =>
        {
            int n = task / chunks, px = task % chunks * Chunk, len = Math.Min(Chunk, hw - px);
            var e = _e.AsSpan(n * hw + px, len);
            var v = _v.AsSpan(n * hw + px, len);
            e.Clear();
            v.Clear();
            for (int d = 0; d < p.D; d++)
            {
                int at = (n * p.D + d) * hw + px;
                TensorPrimitives.Add(e, err.AsSpan(at, len), e);
                TensorPrimitives.Add(v, dev.AsSpan(at, len), v);
            }
        });
        Parallel.For(0, p.N * chunks, task =>
        {
            int n = task / chunks, px = task % chunks * Chunk, len = Math.Min(Chunk, hw - px);
            var e = _e.AsSpan(n * hw + px, len);
            var v = _v.AsSpan(n * hw + px, len);
            var score = _score.AsSpan(n * hw + px, len);
            TensorPrimitives.Multiply(v, 1f / p.M, v);
            TensorPrimitives.Subtract(e, p.EMean, score);
            TensorPrimitives.Multiply(score, 1f / p.EStd, score);
            Span<float> tmp = stackalloc float[len];
            TensorPrimitives.Subtract(v, p.VMean, tmp);
            TensorPrimitives.MultiplyAdd(tmp, 1f / p.VStd, score, score);
        });
    }

    [Benchmark]
    public void Fused() => StudentTeacherScoreCpu.Forward(_p, _teacher, _students, _mu, _sigma, _score, default, default);
}
