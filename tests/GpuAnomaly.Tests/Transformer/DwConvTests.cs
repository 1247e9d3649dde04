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

    /// <summary>
    /// The cpu kernel's paths, on both SIMD widths: C below, at and just past a vector (masked loads, the overlapping
    /// last vector), 3x3 "same" (the register sweep with its edge columns and zero rows) and valid, other kernels
    /// (four-pixel sweep, border pixels), maps narrower or shorter than the kernel, batch 1 and 3, GELU on and off.
    /// </summary>
    [Fact]
    public void Cpu_EdgeShapes_MatchReference()
    {
        var rng = KernelLab.NewRng(out int seed);
        var shapes = new List<DwConvParams>();
        foreach (int c in new[] { 1, 7, 16, 17, 33, 128, 129 })
            foreach (int k in new[] { 1, 3, 5, 7 })
            {
                int b = rng.Next(2) == 0 ? 1 : 3;
                var act = rng.Next(2) == 0 ? Epilogue.Gelu : Epilogue.None;
                shapes.Add(DwConvParams.Create(b, rng.Next(k, 12), rng.Next(k, 12), c, k, bias: rng.Next(4) != 0, act: act));
                shapes.Add(DwConvParams.Create(b, rng.Next(1, 4), rng.Next(1, 4), c, k, act: act)); // smaller than the kernel
                shapes.Add(new DwConvParams { B = b, H = k + 2, W = k + 5, C = c, KH = k, KW = k, HasBias = 1, Act = act }); // no padding
            }
        shapes.Add(DwConvParams.Create(1, 1, 2, 5, act: Epilogue.Gelu)); // 3x3 on two columns: edge columns, no interior
        shapes.Add(DwConvParams.Create(3, 2, 1, 20)); // 3x3 on one column
        shapes.Add(new DwConvParams { B = 2, H = 6, W = 9, C = 19, KH = 3, KW = 5, PadH = 1, PadW = 1, HasBias = 1, Act = Epilogue.Gelu });
        shapes.Add(new DwConvParams { B = 1, H = 4, W = 10, C = 40, KH = 5, KW = 3, PadH = 2, PadW = 0, HasBias = 0 });
        shapes.Add(new DwConvParams { B = 1, H = 8, W = 8, C = 48, KH = 3, KW = 3, PadH = 1, PadW = 0, HasBias = 1 });
        shapes.Add(new DwConvParams { B = 1, H = 8, W = 8, C = 48, KH = 3, KW = 3, PadH = 0, PadW = 1, HasBias = 1 });
        try
        {
            foreach (bool v256 in new[] { false, true })
            {
                DwConvCpu.ForceVector256 = v256;
                foreach (var p in shapes)
                {
                    var (x, w, b) = Inputs(rng, p);
                    var y = new float[p.OutputElements];
                    KernelLab.Poison(y);
                    DwConvCpu.Forward(p, x, w, b, y);
                    KernelLab.AssertClose(y, DwConvReference.Forward(p, x, w, b), 1e-5, $"dwconv cpu {p} vector256={v256} seed {seed}");
                }
            }
        }
        finally { DwConvCpu.ForceVector256 = false; }
    }

    /// <summary>Warm calls allocate nothing: the reordered weights live in the thread's workspace, the parallel loop reuses one body object.</summary>
    [Fact]
    public void Cpu_WarmCall_DoesNotAllocate()
    {
        var rng = KernelLab.NewRng(out _);
        var p = DwConvParams.Create(1, 14, 14, 128, act: Epilogue.Gelu);
        var (x, w, b) = Inputs(rng, p);
        var y = new float[p.OutputElements];
        DwConvCpu.Forward(p, x, w, b, y);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) DwConvCpu.Forward(p, x, w, b, y);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
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
