using Xunit;

namespace GpuAnomaly.Tests;

/// <summary>The metric itself must be able to fail.</summary>
public class KernelLabTests
{
    [Fact]
    public void RelL2_RejectsNaN()
    {
        Assert.Equal(double.PositiveInfinity, KernelLab.RelL2([1f, float.NaN], [1.0, 2.0]));
    }

    [Fact]
    public void RelL2_MeasuresError()
    {
        Assert.Equal(0.0, KernelLab.RelL2([3f, 4f], [3.0, 4.0]));
        Assert.Equal(0.2, KernelLab.RelL2([3f, 5f], [3.0, 4.0]), 12);
    }

    [Fact]
    public void RandomFloats_HasNoZeros()
    {
        var rng = KernelLab.NewRng(out _);
        Assert.DoesNotContain(0f, KernelLab.RandomFloats(rng, 10000));
    }
}
