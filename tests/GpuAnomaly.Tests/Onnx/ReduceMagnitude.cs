using GpuAnomaly.Engine;

namespace GpuAnomaly.Tests.Onnx;

/// <summary>
/// What a reduction's float32 rounding is measured against (<see cref="KernelLab.AssertCloseToMagnitude"/>). Sum and
/// Mean of random signs can cancel to near zero: they are measured against their terms' magnitude, the same reduction
/// of |x|. LogSum and LogSumExp turn the sum's relative rounding into an absolute error of the log (d log s = ds / s),
/// so a sum near 1 (a result near 0) is measured against |result| + 1. The other kinds do not cancel: null, plain
/// relative L2.
/// </summary>
internal static class ReduceMagnitude
{
    /// <summary>Relative L2 for every op, against the terms' magnitude where <paramref name="op"/> is a reduction that can cancel.</summary>
    public static void AssertClose(HostKernelOp op, float[] x, Shape shape, float[] actual, double[] expected, double tolerance, string context)
    {
        var magnitude = op is ReduceOp r ? Of(r, x.Select(v => (double)v).ToArray(), shape, expected) : null;
        if (magnitude is null) KernelLab.AssertClose(actual, expected, tolerance, context);
        else KernelLab.AssertCloseToMagnitude(actual, expected, magnitude, tolerance, context);
    }

    private static double[]? Of(ReduceOp op, double[] x, Shape shape, double[] expected) => op.Function switch
    {
        ReduceKind.Sum or ReduceKind.Mean => op.Reference([x.Select(Math.Abs).ToArray()], [shape], out _),
        ReduceKind.LogSum or ReduceKind.LogSumExp => expected.Select(e => Math.Abs(e) + 1).ToArray(),
        _ => null,
    };
}
