using GpuAnomaly.Kernels.StudentTeacher;

namespace GpuAnomaly.Engine;

/// <summary>
/// Uninformed Students scoring of one scale (<see cref="StudentTeacherScoreParams"/>), one fused
/// kernel. Inputs: teacher [N, D, H, W], mu [D], sigma [D], then the M students' outputs
/// [N, D, H, W] as M separate values (1 &lt;= M &lt;= 4); output: the score map [N, H, W].
/// Separate student inputs let a model feed each student network's last conv straight in, with
/// no concat copy and no arena support for writing into slices of one stacked buffer; the
/// kernels take a fixed number of student views (4) for that, which covers the paper's M = 3.
/// </summary>
public sealed class StudentTeacherScoreOp(float eMean = 0f, float eStd = 1f, float vMean = 0f, float vStd = 1f) : Op
{
    /// <summary>Mean and standard deviation of e and v over anomaly-free validation images.</summary>
    public float EMean { get; } = eMean;
    public float EStd { get; } = eStd;
    public float VMean { get; } = vMean;
    public float VStd { get; } = vStd;
    public override string Kind => "student_teacher_score";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 4, 3 + StudentTeacherScoreParams.MaxStudents);
        var p = Params(inputs);
        return new Shape(p.N, p.H, p.W);
    }

    public override void Run(Device device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        var p = Params(inputs.Select(t => t.Shape).ToArray());
        var students = new Tensor[p.M];
        for (int i = 0; i < p.M; i++) students[i] = inputs[3 + i];
        device.StudentTeacherScore(p, inputs[0], students, inputs[1], inputs[2], output);
    }

    /// <summary>The kernel parameters for these input shapes (teacher, mu, sigma, students...); ArgumentException naming the shapes when they do not fit.</summary>
    public StudentTeacherScoreParams Params(IReadOnlyList<Shape> inputs)
    {
        var t = inputs[0];
        if (t.Rank != 4) throw new ArgumentException($"teacher {t} is not [N, D, H, W] (rank 4)");
        for (int i = 1; i <= 2; i++)
            if (inputs[i].Rank != 1 || inputs[i][0] != t[1])
                throw new ArgumentException($"{(i == 1 ? "mu" : "sigma")} {inputs[i]} does not match teacher {t} (expected [{t[1]}])");
        for (int i = 3; i < inputs.Count; i++)
            if (inputs[i] != t)
                throw new ArgumentException($"student {i - 3} {inputs[i]} does not match teacher {t}");
        var p = StudentTeacherScoreParams.Create(t[0], t[1], t[2], t[3], inputs.Count - 3, EMean, EStd, VMean, VStd);
        try { p.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"teacher {t}: {e.Message}", e); }
        return p;
    }

    public override string ToString() => $"student_teacher_score(e=({EMean}, {EStd}) v=({VMean}, {VStd}))";
}
