using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Transformer;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Transformer;

/// <summary>nn.LayerNorm over the last dimension: cpu and the warp-per-row ILGPU kernel vs float64.</summary>
public class LayerNormTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;
    public LayerNormTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    /// <summary>Rows with an offset (mean far from 0) so a one-pass E[x^2] - mean^2 would fail.</summary>
    private static float[] Rows(Random rng, long n) => KernelLab.RandomFloats(rng, n).Select(v => 3f + v).ToArray();

    [Fact]
    public void Cpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        for (int i = 0; i < 48; i++)
        {
            var p = LayerNormParams.Create(i == 0 ? 1 : rng.Next(1, i < 44 ? 300 : 2000), i == 1 ? 1 : rng.Next(1, 300));
            var x = Rows(rng, p.Elements);
            var w = KernelLab.RandomFloats(rng, p.C);
            var b = KernelLab.RandomFloats(rng, p.C);
            var y = new float[p.Elements];
            KernelLab.Poison(y);
            LayerNormCpu.Forward(p, x, w, b, y);
            KernelLab.AssertClose(y, LayerNormReference.Forward(p, x, w, b), 1e-5, $"layer_norm cpu {p} seed {seed}");
        }
    }

    [Fact]
    public void Ilgpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var acc = _ilgpu.Accelerator;
        var kernels = new LayerNormGpu(acc);
        foreach (var (m, c) in new[] { (1, 1), (1, 64), (3, 7), (5, 33), (17, 64), (9, 130) })
        {
            var p = LayerNormParams.Create(m, c);
            var x = Rows(rng, p.Elements);
            var w = KernelLab.RandomFloats(rng, c);
            var b = KernelLab.RandomFloats(rng, c);
            using var bx = acc.Allocate1D(x);
            using var bw = acc.Allocate1D(w);
            using var bb = acc.Allocate1D(b);
            var poison = new float[p.Elements];
            KernelLab.Poison(poison);
            using var by = acc.Allocate1D(poison);
            kernels.Forward(p, bx.View, bw.View, bb.View, by.View);
            acc.Synchronize();
            KernelLab.AssertClose(by.GetAsArray1D(), LayerNormReference.Forward(p, x, w, b), 1e-5, $"layer_norm ilgpu {p} seed {seed}");
        }
    }

    [Fact]
    public void BadShapes_Throw()
    {
        var e = Assert.Throws<ArgumentException>(() => LayerNormCpu.Forward(LayerNormParams.Create(2, 3), new float[6], new float[2], new float[3], new float[6]));
        Assert.Contains("layer_norm", e.Message);
    }
}
