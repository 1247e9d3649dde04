using GpuAnomaly.Engine;
using GpuAnomaly.Kernels;
using GpuAnomaly.Kernels.Conv;
using Xunit;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>
/// A small conv / leaky-relu / pool network built from the built-in ops, run end to end on a
/// device and compared with a host computation (Conv2dReference and plain loops).
/// </summary>
public static class ConvNet
{
    // x [2, 3, 9, 11]
    //  conv1 3x3 pad 1, bias, fused leaky relu 0.1  -> [2, 8, 9, 11]
    //  max pool 2                                   -> [2, 8, 4, 5]   (output "features")
    //  conv2 3x3 groups 2, pad (1, 0, 0, 1), bias   -> [2, 8, 3, 4]
    //  leaky relu 0.2
    //  avg pool 2 stride 1                          -> [2, 8, 2, 3]
    //  conv3 1x1 -> 4, no bias; relu; add           -> [2, 4, 2, 3]   (output "y" = relu(c3) + c3)
    private static readonly int[] XShape = [2, 3, 9, 11];

    public static void Check(Device device)
    {
        var rng = KernelLab.NewRng(out int seed);
        var w1 = KernelLab.RandomFloats(rng, 8 * 3 * 3 * 3, 0.5f);
        var b1 = KernelLab.RandomFloats(rng, 8);
        var w2 = KernelLab.RandomFloats(rng, 8 * 4 * 3 * 3, 0.5f);
        var b2 = KernelLab.RandomFloats(rng, 8);
        var w3 = KernelLab.RandomFloats(rng, 4 * 8, 0.5f);
        var x = KernelLab.RandomFloats(rng, 2 * 3 * 9 * 11);

        var g = new GraphBuilder();
        var vx = g.Input("x", new Shape(XShape));
        var c1 = g.Conv2d(vx, g.Constant("conv1.weight", w1, new Shape(8, 3, 3, 3)), g.Constant("conv1.bias", b1, new Shape(8)),
            new Conv2dOptions(padding: 1, act: Activation.LeakyRelu, slope: 0.1f), "conv1");
        var p1 = g.MaxPool2d(c1, 2, name: "pool1");
        var c2 = g.Conv2d(p1, g.Constant("conv2.weight", w2, new Shape(8, 4, 3, 3)), g.Constant("conv2.bias", b2, new Shape(8)),
            new Conv2dOptions(groups: 2) { PadTop = 1, PadRight = 1 }, "conv2");
        var a2 = g.LeakyRelu(c2, 0.2f);
        var p2 = g.AvgPool2d(a2, 2, stride: 1);
        var c3 = g.Conv2d(p2, g.Constant("conv3.weight", w3, new Shape(4, 8, 1, 1)), null, new Conv2dOptions(), "conv3");
        var y = g.Add(g.Relu(c3), c3);
        g.Output("features", p1);
        g.Output("y", y);
        var graph = g.Build();
        Assert.Equal(new Shape(2, 4, 2, 3), y.Shape);

        // Host: float64 per layer, rounded to float32 between layers as the device stores them.
        var h1 = Conv(x, 2, 3, 9, 11, w1, b1, 8, 3, new Conv2dParams { PadTop = 1, PadLeft = 1, PadBottom = 1, PadRight = 1, Groups = 1, Act = Activation.LeakyRelu, Slope = 0.1f });
        var hp1 = Pool(ToFloat(h1), 2, 8, 9, 11, 2, 2, max: true);
        var h2 = Conv(ToFloat(hp1), 2, 8, 4, 5, w2, b2, 8, 3, new Conv2dParams { PadTop = 1, PadRight = 1, Groups = 2 });
        var ha2 = h2.Select(v => v >= 0 ? v : 0.2 * v).ToArray();
        var hp2 = Pool(ToFloat(ha2), 2, 8, 3, 4, 2, 1, max: false);
        var h3 = Conv(ToFloat(hp2), 2, 8, 2, 3, w3, null, 4, 1, new Conv2dParams { Groups = 1 });
        var hy = h3.Select(v => (double)(float)Math.Max(v, 0) + (float)v).ToArray();

        using var exec = new Executor(graph, device);
        for (int run = 0; run < 2; run++)
        {
            var outputs = exec.RunToHost(("x", x));
            KernelLab.AssertClose(outputs["features"], hp1, 1e-5, $"{device.Name} features, seed {seed}, run {run}");
            KernelLab.AssertClose(outputs["y"], hy, 1e-5, $"{device.Name} y, seed {seed}, run {run}");
        }
    }

    private static float[] ToFloat(double[] a) => a.Select(v => (float)v).ToArray();

    private static double[] Conv(float[] x, int n, int c, int h, int w, float[] weight, float[]? bias, int cOut, int k, Conv2dParams p)
    {
        p.N = n; p.CIn = c; p.H = h; p.W = w; p.COut = cOut; p.KH = p.KW = k;
        p.StrideH = p.StrideW = p.DilH = p.DilW = 1;
        p.HasBias = bias is null ? 0 : 1;
        var y = new double[p.OutputElements];
        Conv2dReference.Forward(p, x, weight, bias, y);
        return y;
    }

    /// <summary>Max or average (count_include_pad irrelevant: no padding) pooling, no padding, as plain loops.</summary>
    private static double[] Pool(float[] x, int n, int c, int h, int w, int k, int stride, bool max)
    {
        int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
        var y = new double[n * c * oh * ow];
        for (int nc = 0; nc < n * c; nc++)
        for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
        {
            double acc = max ? double.NegativeInfinity : 0;
            for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
            {
                double v = x[(nc * h + oy * stride + ky) * w + ox * stride + kx];
                acc = max ? Math.Max(acc, v) : acc + v;
            }
            y[(nc * oh + oy) * ow + ox] = max ? acc : acc / (k * k);
        }
        return y;
    }
}

public class BuiltInOpsGraphCpuTests
{
    [Fact]
    public void ConvNet_MatchesHost_OnCpu()
    {
        using var device = new CpuDevice();
        ConvNet.Check(device);
    }
}

public class BuiltInOpsGraphIlgpuCpuTests(IlgpuCpuFixture fixture) : IClassFixture<IlgpuCpuFixture>
{
    [Fact]
    public void ConvNet_MatchesHost_OnIlgpuCpu() => ConvNet.Check(fixture.Device);
}
