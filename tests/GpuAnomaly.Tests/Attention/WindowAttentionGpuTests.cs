using System.Diagnostics;
using GpuAnomaly.Engine;
using GpuAnomaly.Kernels.Attention;
using ILGPU;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace GpuAnomaly.Tests.Attention;

/// <summary>
/// The fused ILGPU attention kernel on ILGPU's CPU emulator (warp size 4) against the float64 reference, on small
/// maps: windows with and without shift and bias, sparse groups, global attention spanning several query and key tiles.
/// </summary>
public class WindowAttentionGpuTests(IlgpuCpuFixture fixture, ITestOutputHelper output) : IClassFixture<IlgpuCpuFixture>
{
    private const double Tolerance = 1e-5;
    private readonly IlgpuDevice _device = fixture.Device;

    public static TheoryData<string> Cases() => new()
    {
        "window 1 9 7 2 8 4 2 1",   // shifted, bias, padded to 12x8
        "window 2 9 7 2 16 4 0 0",  // batch 2, no shift, no bias
        "window 1 7 9 1 32 7 3 1",  // ws 7, odd shift 3, padded to 7x14
        "window 1 5 6 2 12 8 4 1",  // one window larger than the map
        "sparse 2 7 6 1 64 2",      // d 64: 32 queries per tile
        "sparse 1 9 7 2 8 4",       // S 4, padded to 12x8
        "sparse 1 9 7 2 24 1",      // global: 63 tokens, 2 key tiles
        "sparse 1 11 9 1 64 1",     // global, d 64: 99 tokens, 4 query tiles, 4 key tiles
        "window 2 3 2 2 8 1 0 1",   // ws 1: groups of one token (Tq 1, no second query row in the score step)
        "sparse 1 3 1 2 40 1",      // global, 3 tokens (Tq 4), d 40: 5 channel chunks
        "window 1 14 14 3 32 7 3 1", // Swin-T stage 1 geometry (Tq 64, 4 chunks): 4 shifted windows
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_MatchesReference(string spec)
    {
        var a = spec.Split(' ');
        int[] v = a[1..].Select(int.Parse).ToArray();
        var p = a[0] == "window"
            ? WindowAttentionParams.Window(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7] != 0)
            : WindowAttentionParams.Sparse(v[0], v[1], v[2], v[3], v[4], v[5]);
        var rng = KernelLab.NewRng(out int seed);
        var c = WindowAttentionCase.Create(p, rng);
        var sw = Stopwatch.StartNew();
        var acc = _device.Accelerator;
        var gpu = new WindowAttentionGpu(acc);
        using var qkv = acc.Allocate1D(c.Qkv);
        using var pad = acc.Allocate1D(c.PadQkv.Length == 0 ? [0f] : c.PadQkv);
        using var bias = acc.Allocate1D(c.Bias.Length == 0 ? [0f] : c.Bias);
        var poison = new float[p.OutputElements];
        KernelLab.Poison(poison);
        using var y = acc.Allocate1D(poison);
        gpu.Forward(p, qkv.View, c.PadQkv.Length == 0 ? default : pad.View, c.Bias.Length == 0 ? default : bias.View, y.View);
        acc.Synchronize();
        var tiles = gpu.TilesFor(p);
        KernelLab.AssertClose(y.GetAsArray1D(), c.Expected, Tolerance, $"gpu {p} Tq={tiles.Tq}, seed {seed}");
        output.WriteLine($"{p}: Tq={tiles.Tq} chunks={tiles.Chunks}, {sw.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void HeadDimAbove64_Throws()
    {
        var p = WindowAttentionParams.Sparse(1, 2, 2, 1, 65, 1);
        var acc = _device.Accelerator;
        using var qkv = acc.Allocate1D<float>(p.QkvElements);
        using var y = acc.Allocate1D<float>(p.OutputElements);
        var e = Assert.Throws<ArgumentException>(() => new WindowAttentionGpu(acc).Forward(p, qkv.View, default, default, y.View));
        Assert.Contains("head dim", e.Message);
    }
}
