using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Transformer;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Transformer;

/// <summary>Channels-last depthwise convolution (+ GELU): cpu and ILGPU vs float64.</summary>
public class DwConvTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;
    public DwConvTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    private static DwConvParams RandomParams(Random rng, int maxSide, int maxC)
    {
        int kh = rng.Next(1, 6), kw = rng.Next(1, 6);
        return new DwConvParams
        {
            B = rng.Next(1, 4), H = rng.Next(kh, maxSide + 1), W = rng.Next(kw, maxSide + 1), C = rng.Next(1, maxC + 1),
            KH = kh, KW = kw, PadH = rng.Next(0, kh / 2 + 1), PadW = rng.Next(0, kw / 2 + 1),
            HasBias = rng.Next(4) != 0 ? 1 : 0, Act = rng.Next(2) == 0 ? Epilogue.Gelu : Epilogue.None,
        };
    }

    private static (float[] x, float[] w, float[] b) Inputs(Random rng, in DwConvParams p) =>
        (KernelLab.RandomFloats(rng, p.InputElements), KernelLab.RandomFloats(rng, p.WeightElements),
         p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.C) : []);

    [Fact]
    public void Cpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var shapes = Enumerable.Range(0, 46).Select(_ => RandomParams(rng, 20, 70)).ToList();
        shapes.Add(DwConvParams.Create(2, 14, 14, 128, act: Epilogue.Gelu)); // the Mix-FFN's dwconv, parallel path
        shapes.Add(DwConvParams.Create(1, 1, 1, 3));
        foreach (var p in shapes)
        {
            var (x, w, b) = Inputs(rng, p);
            var y = new float[p.OutputElements];
            KernelLab.Poison(y);
            DwConvCpu.Forward(p, x, w, b, y);
            KernelLab.AssertClose(y, DwConvReference.Forward(p, x, w, b), 1e-5, $"dwconv cpu {p} seed {seed}");
        }
    }

    [Fact]
    public void Ilgpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var acc = _ilgpu.Accelerator;
        var kernels = new DwConvGpu(acc);
        var shapes = Enumerable.Range(0, 5).Select(_ => RandomParams(rng, 9, 12)).ToList();
        shapes.Add(DwConvParams.Create(1, 7, 7, 16, act: Epilogue.Gelu));
        shapes.Add(DwConvParams.Create(2, 5, 6, 3, bias: false));
        foreach (var p in shapes)
        {
            var (x, w, b) = Inputs(rng, p);
            using var bx = acc.Allocate1D(x);
            using var bw = acc.Allocate1D(w);
            using var bb = acc.Allocate1D<float>(Math.Max(b.Length, 1));
            if (b.Length > 0) bb.CopyFromCPU(b);
            var poison = new float[p.OutputElements];
            KernelLab.Poison(poison);
            using var by = acc.Allocate1D(poison);
            kernels.Forward(p, bx.View, bw.View, p.HasBias != 0 ? bb.View : default, by.View);
            acc.Synchronize();
            KernelLab.AssertClose(by.GetAsArray1D(), DwConvReference.Forward(p, x, w, b), 1e-5, $"dwconv ilgpu {p} seed {seed}");
        }
    }

    [Fact]
    public void BadShapes_Throw()
    {
        var e = Assert.Throws<ArgumentException>(() => DwConvCpu.Forward(DwConvParams.Create(1, 4, 4, 2), new float[32], new float[17], new float[2], new float[32]));
        Assert.Contains("dwconv", e.Message);
    }
}
