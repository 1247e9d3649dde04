using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Transformer;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Transformer;

/// <summary>The mean over tokens and NCHW -> tokens: cpu and ILGPU vs float64 (the transpose must be exact).</summary>
public class TokensTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;
    public TokensTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    private static TokensParams RandomParams(Random rng, int maxT, int maxC) =>
        TokensParams.Create(rng.Next(1, 5), rng.Next(1, maxT + 1), rng.Next(1, maxC + 1));

    [Fact]
    public void Cpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var shapes = Enumerable.Range(0, 46).Select(_ => RandomParams(rng, 250, 150)).ToList();
        shapes.Add(TokensParams.Create(8, 196, 64));
        shapes.Add(TokensParams.Create(1, 1, 1));
        foreach (var p in shapes)
        {
            var x = KernelLab.RandomFloats(rng, p.Elements);
            var mean = new float[p.PooledElements];
            KernelLab.Poison(mean);
            TokensCpu.Mean(p, x, mean);
            KernelLab.AssertClose(mean, TokensReference.Mean(p, x), 1e-5, $"token_mean cpu {p} seed {seed}");
            var tokens = new float[p.Elements];
            KernelLab.Poison(tokens);
            TokensCpu.FromNchw(p, x, tokens);
            KernelLab.AssertClose(tokens, TokensReference.FromNchw(p, x), 0, $"nchw_to_tokens cpu {p} seed {seed}");
        }
    }

    [Fact]
    public void Ilgpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var acc = _ilgpu.Accelerator;
        var kernels = new TokensGpu(acc);
        var shapes = Enumerable.Range(0, 5).Select(_ => RandomParams(rng, 40, 20)).ToList();
        shapes.Add(TokensParams.Create(2, 49, 16));
        foreach (var p in shapes)
        {
            var x = KernelLab.RandomFloats(rng, p.Elements);
            using var bx = acc.Allocate1D(x);
            var poison = new float[p.Elements];
            KernelLab.Poison(poison);
            using var bm = acc.Allocate1D(poison.AsSpan(0, (int)p.PooledElements).ToArray());
            using var bt = acc.Allocate1D(poison);
            kernels.Mean(p, bx.View, bm.View);
            kernels.FromNchw(p, bx.View, bt.View);
            acc.Synchronize();
            KernelLab.AssertClose(bm.GetAsArray1D(), TokensReference.Mean(p, x), 1e-5, $"token_mean ilgpu {p} seed {seed}");
            KernelLab.AssertClose(bt.GetAsArray1D(), TokensReference.FromNchw(p, x), 0, $"nchw_to_tokens ilgpu {p} seed {seed}");
        }
    }

    [Fact]
    public void BadShapes_Throw()
    {
        var e = Assert.Throws<ArgumentException>(() => TokensCpu.Mean(TokensParams.Create(2, 3, 4), new float[24], new float[7]));
        Assert.Contains("token_mean", e.Message);
    }
}
