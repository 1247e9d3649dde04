namespace GpuAnomaly.Kernels.StudentTeacher;

/// <summary>The float64 host reference of <see cref="StudentTeacherScoreParams"/>'s formulas, written as METHODS.md states them.</summary>
public static class StudentTeacherScoreReference
{
    /// <summary>
    /// teacher [N, D, H, W], students [M, N, D, H, W] (the M outputs stacked), mu and sigma [D];
    /// score, e and v [N, H, W]. v is computed as the paper writes it (mean of squared norms minus
    /// the squared norm of the mean): float64 absorbs the cancellation at these sizes.
    /// </summary>
    public static void Forward(in StudentTeacherScoreParams p, ReadOnlySpan<float> teacher, ReadOnlySpan<float> students,
        ReadOnlySpan<float> mu, ReadOnlySpan<float> sigma, Span<double> score, Span<double> e, Span<double> v)
    {
        p.Validate();
        if (teacher.Length != p.DescriptorElements || students.Length != p.StudentsElements || mu.Length != p.D || sigma.Length != p.D
            || score.Length != p.OutputElements || e.Length != p.OutputElements || v.Length != p.OutputElements)
            throw new ArgumentException($"student_teacher_score reference: teacher {teacher.Length}, students {students.Length}, mu {mu.Length}, " +
                $"sigma {sigma.Length}, score {score.Length}, e {e.Length}, v {v.Length} elements do not fit {p}");
        int hw = p.H * p.W;
        long studentStride = p.DescriptorElements;
        for (int n = 0; n < p.N; n++)
        for (int px = 0; px < hw; px++)
        {
            double err = 0, sumSq = 0, mbarSq = 0;
            for (int d = 0; d < p.D; d++)
            {
                long at = ((long)n * p.D + d) * hw + px;
                double y = (teacher[(int)at] - (double)mu[d]) / sigma[d];
                double m = 0;
                for (int i = 0; i < p.M; i++)
                {
                    double s = students[(int)(i * studentStride + at)];
                    m += s;
                    sumSq += s * s;
                }
                m /= p.M;
                err += (m - y) * (m - y);
                mbarSq += m * m;
            }
            double var = sumSq / p.M - mbarSq;
            int o = n * hw + px;
            e[o] = err;
            v[o] = var;
            score[o] = (err - p.EMean) / p.EStd + (var - p.VMean) / p.VStd;
        }
    }
}
