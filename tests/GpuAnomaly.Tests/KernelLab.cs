using GpuAnomaly.Engine;
using Xunit;

namespace GpuAnomaly.Tests;

/// <summary>
/// The kernel lab's shared rules: fresh random inputs (never zeros), poisoned outputs, one
/// error metric (relative L2 against a float64 reference), and NaN never passes.
/// </summary>
public static class KernelLab
{
    /// <summary>
    /// A generator with a fresh seed, printed on failure so a case can be replayed: set
    /// GPUANOMALY_TEST_SEED to that number and run the one test (dotnet test --filter).
    /// </summary>
    public static Random NewRng(out int seed)
    {
        seed = int.TryParse(Environment.GetEnvironmentVariable("GPUANOMALY_TEST_SEED"), out int replay) ? replay : Random.Shared.Next();
        return new Random(seed);
    }

    /// <summary>Uniform in [-scale, scale], with no exact zeros.</summary>
    public static float[] RandomFloats(Random rng, long n, float scale = 1f)
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

    /// <summary>Fills an output buffer with NaN so that an unwritten element fails the comparison.</summary>
    public static void Poison(Span<float> y) => y.Fill(float.NaN);

    /// <summary>||out - ref|| / ||ref|| in float64; +infinity when out holds a NaN or an infinity the reference lacks.</summary>
    public static double RelL2(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected) => RelL2(actual, expected, expected);

    /// <summary>||out - ref|| / ||magnitude|| in float64; +infinity when out holds a NaN or an infinity the reference lacks.</summary>
    public static double RelL2(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, ReadOnlySpan<double> magnitude)
    {
        if (actual.Length != expected.Length || magnitude.Length != expected.Length)
            throw new ArgumentException($"length {actual.Length} vs reference {expected.Length} and magnitude {magnitude.Length}");
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i];
            if (!double.IsFinite(a) && a != expected[i]) return double.PositiveInfinity;
            double d = a - expected[i];
            num += d * d;
            den += magnitude[i] * magnitude[i];
        }
        if (den == 0) return num == 0 ? 0 : double.PositiveInfinity;
        return Math.Sqrt(num / den);
    }

    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double tolerance, string context)
    {
        double err = RelL2(actual, expected);
        Assert.True(err <= tolerance, $"{context}: relative L2 error {err:E3} > {tolerance:E1}");
    }

    /// <summary>
    /// ||actual - expected|| / ||magnitude||, where magnitude is the same computation on absolute values (the size of
    /// what was summed): for sums whose result can cancel to near zero. A GEMV with a single output of +-x terms can land
    /// far below its terms, and plain relative L2 then measures float32's honest rounding of the terms against an
    /// accidental small result (1 run in ~300 of TernaryLinearCpuTests failed so, M = N = 1). NaN never passes.
    /// </summary>
    public static void AssertCloseToMagnitude(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, ReadOnlySpan<double> magnitude,
        double tolerance, string context)
    {
        double err = RelL2(actual, expected, magnitude);
        Assert.True(err <= tolerance, $"{context}: L2 error relative to the terms' magnitude {err:E3} > {tolerance:E1}");
    }

    /// <summary>Uploads host data, runs <paramref name="op"/> on a poisoned output of <paramref name="outElements"/> elements, downloads it.</summary>
    public static float[] RunOnDevice(Device device, long outElements, Func<Tensor> upload, Action<Tensor> op)
    {
        using var y = device.Allocate(new Shape(checked((int)outElements)));
        var poison = new float[outElements];
        Poison(poison);
        y.CopyFrom(poison);
        op(y);
        device.Synchronize();
        return y.ToArray();
    }
}

/// <summary>One ILGPU CPU-emulator device per test class (contexts are not shared between classes running in parallel).</summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    public IlgpuDevice Device { get; } = IlgpuDevice.OpenCpuEmulator();
    public void Dispose() => Device.Dispose();
}
