using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Transformer;
using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace GpuAnomaly.Tests.Transformer;

/// <summary>nn.Linear: cpu (per-call and packed weights, SGEMM and small-M paths) and the ILGPU GEMM / GEMV vs float64.</summary>
public class LinearTests : IClassFixture<IlgpuCpuFixture>
{
    private readonly IlgpuDevice _ilgpu;
    public LinearTests(IlgpuCpuFixture fixture) => _ilgpu = fixture.Device;

    private static LinearParams RandomParams(Random rng, int maxM, int maxK, int maxN)
    {
        int m = rng.Next(3) == 0 ? rng.Next(1, 5) : rng.Next(1, maxM + 1);
        return LinearParams.Create(m, rng.Next(1, maxK + 1), rng.Next(1, maxN + 1), rng.Next(4) != 0,
            rng.Next(2) == 0 ? Epilogue.Gelu : Epilogue.None);
    }

    private static (float[] x, float[] w, float[] b) Inputs(Random rng, in LinearParams p) =>
        (KernelLab.RandomFloats(rng, p.InputElements), KernelLab.RandomFloats(rng, p.WeightElements),
         p.HasBias != 0 ? KernelLab.RandomFloats(rng, p.N) : []);

    [Fact]
    public void Cpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var shapes = Enumerable.Range(0, 48).Select(_ => RandomParams(rng, 300, 300, 300)).ToList();
        shapes.Add(LinearParams.Create(196, 64, 192));
        shapes.Add(LinearParams.Create(392, 128, 64, act: Epilogue.Gelu));
        shapes.Add(LinearParams.Create(1, 256, 1000));
        foreach (var p in shapes)
        {
            var (x, w, b) = Inputs(rng, p);
            var expected = LinearReference.Forward(p, x, w, b);
            // Random shapes include single outputs (M = N = 1), whose sum can cancel far below its terms: the error is
            // measured against the terms' size (KernelLab.AssertCloseToMagnitude).
            var magnitude = LinearReference.Forward(p, x.Select(MathF.Abs).ToArray(), w.Select(MathF.Abs).ToArray(), b.Select(MathF.Abs).ToArray());
            var y = new float[p.OutputElements];
            KernelLab.Poison(y);
            LinearCpu.Forward(p, x, w, b, y);
            KernelLab.AssertCloseToMagnitude(y, expected, magnitude, 1e-5, $"linear cpu {p} seed {seed}");
            using var packed = LinearCpu.PackWeights(p, w);
            KernelLab.Poison(y);
            LinearCpu.Forward(p, x, packed, b, y);
            KernelLab.AssertCloseToMagnitude(y, expected, magnitude, 1e-5, $"linear cpu packed {p} seed {seed}");
        }
    }

    [Fact]
    public void Ilgpu_MatchesReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var acc = _ilgpu.Accelerator;
        var kernels = new LinearGpu(acc);
        var shapes = new List<LinearParams>
        {
            LinearParams.Create(1, 37, 9, act: Epilogue.Gelu),   // GEMV
            LinearParams.Create(3, 70, 5, bias: false),          // GEMV, K > warp size
            LinearParams.Create(4, 16, 33),                      // GEMV, largest M
            LinearParams.Create(5, 17, 13, act: Epilogue.Gelu),  // tiled, one partial tile
            LinearParams.Create(70, 33, 66, bias: false),        // tiled, 2 x 2 tiles, K not a multiple of 16
            LinearParams.Create(64, 32, 64),                     // tiled, exact tile
        };
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
            KernelLab.AssertClose(by.GetAsArray1D(), LinearReference.Forward(p, x, w, b), 1e-5, $"linear ilgpu {p} seed {seed}");
        }
    }

    [Fact]
    public void BadShapes_Throw()
    {
        var p = LinearParams.Create(2, 3, 4);
        var e = Assert.Throws<ArgumentException>(() => LinearCpu.Forward(p, new float[6], new float[11], new float[4], new float[8]));
        Assert.Contains("linear", e.Message);
        Assert.Throws<ArgumentException>(() => LinearParams.Create(0, 3, 4).Validate());
        using var packed = LinearCpu.PackWeights(p, new float[12]);
        Assert.Throws<ArgumentException>(() => LinearCpu.Forward(LinearParams.Create(2, 4, 3), new float[8], packed, new float[3], new float[6]));
    }
}
