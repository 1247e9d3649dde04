using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Vim;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Vim;

/// <summary>
/// The fused ViM scoring kernels (cpu SIMD, ILGPU on ilgpu-cpu) and the unfused sequence against the
/// float64 reference on fresh random shapes: odd N, C and K, short sample blocks, K = 0, up to N 1024
/// and C 1000 on the cpu; outputs poisoned with NaN first.
/// </summary>
public class VimKernelTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;

    public VimKernelTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    private static VimCase CpuCase(Random rng, int i)
    {
        if (i == 0) return VimCase.Random(rng, 5, 1024, 1000, 512); // the ImageNet-like head, N/2 residual
        if (i == 1) return VimCase.Random(rng, 9, 768, 10, 256);
        int n = rng.Next(1, 200), c = rng.Next(1, 60);
        int k = i % 7 == 2 ? 0 : rng.Next(0, n + 1);
        return VimCase.Random(rng, rng.Next(1, 12), n, c, k);
    }

    [Fact]
    public void CpuKernel_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 40; i++)
        {
            var c = CpuCase(rng, i);
            var y = VimCase.Poisoned(c.P.OutputElements);
            VimCpu.Forward(c.P, c.X, c.W, c.B, c.O, c.Rt, y);
            c.Check(y, $"seed {seed}, case {i}, cpu fused");
        }
    }

    [Fact]
    public void Unfused_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 12; i++)
        {
            var c = CpuCase(rng, i);
            var y = VimCase.Poisoned(c.P.OutputElements);
            new VimUnfused(c.P).Forward(c.X, c.W, c.B, c.O, c.Rt, y);
            c.Check(y, $"seed {seed}, case {i}, cpu unfused");
        }
    }

    [Fact]
    public void IlgpuKernel_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var acc = _ilgpu.Accelerator;
        var kernel = new VimGpu(acc);
        for (int i = 0; i < 5; i++)
        {
            int n = i == 0 ? 1 : rng.Next(2, 90), c = rng.Next(1, 14);
            var v = VimCase.Random(rng, rng.Next(1, 4), n, c, i == 1 ? 0 : rng.Next(0, n + 1));
            using var x = acc.Allocate1D(v.X);
            using var w = acc.Allocate1D(v.W);
            using var b = acc.Allocate1D(v.B);
            using var o = acc.Allocate1D(v.O);
            using var rt = acc.Allocate1D(v.Rt.Length == 0 ? [0f] : v.Rt);
            using var y = acc.Allocate1D(VimCase.Poisoned(v.P.OutputElements));
            kernel.Forward(v.P, x.View, w.View, b.View, o.View, v.Rt.Length == 0 ? default : rt.View, y.View);
            acc.Synchronize();
            v.Check(y.GetAsArray1D(), $"seed {seed}, case {i}, ilgpu kernel");
        }
    }

    [Fact]
    public void BadShapes_Throw()
    {
        var p = VimParams.Create(2, 4, 3, 2, 1f);
        var ex = Assert.Throws<ArgumentException>(() => VimCpu.Forward(p, new float[8], new float[12], new float[3], new float[4], new float[7], new float[12]));
        Assert.Contains("vim_score", ex.Message);
        Assert.Throws<ArgumentException>(() => VimParams.Create(2, 4, 3, 5, 1f).Validate());
        Assert.Throws<ArgumentException>(() => VimParams.Create(2, 4, 3, 2, float.NaN).Validate());
    }
}
