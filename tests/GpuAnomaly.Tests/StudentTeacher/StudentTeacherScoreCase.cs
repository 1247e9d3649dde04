using GpuAnomaly.Kernels.StudentTeacher;

namespace GpuAnomaly.Tests.StudentTeacher;

/// <summary>
/// One random scoring problem in the regime the kernels must get right: the teacher ~ N(0, 1)
/// scaled and shifted per channel, mu/sigma close to its true per-channel statistics, students =
/// the normalized teacher plus small noise, so v is small and e moderate (the regime where
/// computing v as a difference of sums cancels). EMean/EStd/VMean/VStd are the case's own
/// statistics with the means moved half a standard deviation down, so that scores sit near 1 rather
/// than exactly at 0: with one or two pixels, the case's own statistics would make every score an
/// exact cancellation to 0 and the relative error meaningless. The standard deviations are also floored at a tenth
/// of the mean's magnitude: two pixels can have a spread 40 times smaller than the values, and the normalization would
/// then amplify float32's rounding of e and v 40-fold (a seed failed at 2.5e-5 that way); real validation statistics
/// over thousands of pixels are not that tight. Expected values in float64.
/// </summary>
public sealed class StudentTeacherScoreCase
{
    public StudentTeacherScoreParams P;
    public required float[] Teacher, Students, Mu, Sigma;
    public required double[] Score, E, V;

    public float[] Student(int i) => Students.AsSpan(i * (int)P.DescriptorElements, (int)P.DescriptorElements).ToArray();

    public static StudentTeacherScoreCase Random(Random rng, int n, int d, int h, int w, int m)
    {
        var p = StudentTeacherScoreParams.Create(n, d, h, w, m);
        int hw = h * w;
        var scale = new double[d];
        var offset = new double[d];
        var mu = new float[d];
        var sigma = new float[d];
        for (int c = 0; c < d; c++)
        {
            scale[c] = 0.3 + 3 * rng.NextDouble();
            offset[c] = 2 * rng.NextDouble() - 1;
            mu[c] = (float)(offset[c] + 0.05 * Gauss(rng));
            sigma[c] = (float)(scale[c] * (1 + 0.05 * Gauss(rng)));
        }
        var teacher = new float[p.DescriptorElements];
        var students = new float[p.StudentsElements];
        double noise = 0.02 + 0.1 * rng.NextDouble();
        for (int b = 0; b < n; b++)
        for (int c = 0; c < d; c++)
        for (int px = 0; px < hw; px++)
        {
            int at = (b * d + c) * hw + px;
            teacher[at] = (float)(offset[c] + scale[c] * Gauss(rng));
            double y = (teacher[at] - (double)mu[c]) / sigma[c];
            for (int i = 0; i < m; i++) students[i * p.DescriptorElements + at] = (float)(y + noise * Gauss(rng));
        }

        long outs = p.OutputElements;
        double[] score = new double[outs], e = new double[outs], v = new double[outs];
        StudentTeacherScoreReference.Forward(p, teacher, students, mu, sigma, score, e, v);
        (p.EMean, p.EStd) = Stats(e);
        (p.VMean, p.VStd) = Stats(v);
        p.EMean -= 0.5f * p.EStd;
        p.VMean -= 0.5f * p.VStd;
        StudentTeacherScoreReference.Forward(p, teacher, students, mu, sigma, score, e, v);
        return new() { P = p, Teacher = teacher, Students = students, Mu = mu, Sigma = sigma, Score = score, E = e, V = v };
    }

    /// <summary>Random sizes: D in 1..130 but not a multiple of 4 (except now and then the real 128), odd H and W, N 1..3, M 1..4.</summary>
    public static StudentTeacherScoreCase RandomShape(Random rng, int maxSide, int maxD = 130)
    {
        int d = rng.Next(1, maxD + 1);
        if (d % 4 == 0) d = rng.Next(8) == 0 && maxD >= 128 ? 128 : d - 1;
        int Odd(int max) => 2 * rng.Next(0, (max + 1) / 2) + 1;
        return Random(rng, rng.Next(1, 4), d, Odd(maxSide), Odd(maxSide), rng.Next(1, 5));
    }

    public void Check(float[] score, float[]? e, float[]? v, string context)
    {
        KernelLab.AssertClose(score, Score, 1e-5 * Math.Max(1, ScoreConditioning()), $"{context}, score, {P}");
        if (e is not null) KernelLab.AssertClose(e, E, 1e-5, $"{context}, e, {P}");
        if (v is not null) KernelLab.AssertClose(v, V, 1e-5, $"{context}, v, {P}");
    }

    /// <summary>
    /// How much the normalization score = (e - EMean) / EStd + (v - VMean) / VStd magnifies a relative error of e and v
    /// into the score: || |e| / EStd + |v| / VStd || / || score ||. With one pixel the statistics are that pixel's own, the
    /// floored spread makes e / EStd about 10 while the score is about 1, and float32's honest 1.5e-6 on e became 1.5e-5
    /// on the score (seed 1364301681, case 4). e and v themselves stay held to 1e-5; the score is held to what 1e-5 on
    /// them allows, and never to less than 1e-5. Bugs (a missed pixel, a wrong mean, NaN) are errors of order 1.
    /// </summary>
    private double ScoreConditioning()
    {
        double num = 0, den = 0;
        for (int i = 0; i < Score.Length; i++)
        {
            double m = Math.Abs(E[i]) / P.EStd + Math.Abs(V[i]) / P.VStd;
            num += m * m;
            den += Score[i] * Score[i];
        }
        return den > 0 ? Math.Sqrt(num / den) : 1;
    }

    private static (float Mean, float Std) Stats(double[] a)
    {
        double mean = a.Average();
        double std = Math.Max(Math.Sqrt(a.Sum(x => (x - mean) * (x - mean)) / a.Length), 0.1 * Math.Abs(mean));
        return ((float)mean, std > 0 ? (float)std : 1f);
    }

    private static double Gauss(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
