using GpuAnomaly.Engine;
using GpuAnomaly.Kernels;
using Xunit;

namespace GpuAnomaly.Tests.GraphEngine;

/// <summary>Shape inference as nodes are added, and the messages of its errors.</summary>
public class GraphBuilderTests
{
    private static Value Weight(GraphBuilder b, string name, params int[] dims)
    {
        var s = new Shape(dims);
        return b.Constant(name, KernelLab.RandomFloats(new Random(1), s.Elements), s);
    }

    [Fact]
    public void InfersConvAndPoolShapes()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(2, 6, 17, 13));
        var w = Weight(b, "w", 8, 3, 3, 5);
        var y = b.Conv2d(x, w, Weight(b, "bias", 8), new Conv2dOptions(stride: 2, dilation: 2, groups: 2) { PadTop = 3, PadLeft = 1 });
        // OutH = (17 + 3 - 2*2 - 1)/2 + 1 = 8, OutW = (13 + 1 - 2*4 - 1)/2 + 1 = 3
        Assert.Equal(new Shape(2, 8, 8, 3), y.Shape);
        Assert.Equal(new Shape(2, 8, 4, 1), b.MaxPool2d(y, 2).Shape);
        Assert.Equal(new Shape(2, 8, 4, 2), b.AvgPool2d(y, 3, stride: 2, padding: 1).Shape);
        Assert.Equal(new Shape(2, 8, 6, 1), b.MaxPool2d(y, 2, stride: 1, dilation: 2).Shape);
        Assert.Equal(y.Shape, b.LeakyRelu(y, 0.2f).Shape);
        Assert.Equal(y.Shape, b.Add(y, b.Relu(y)).Shape);
    }

    [Fact]
    public void ConvChannelMismatch_NamesNodeAndShapes()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(1, 3, 32, 32));
        var e = Assert.Throws<ShapeMismatchException>(() => b.Conv2d(x, Weight(b, "w", 64, 16, 3, 3), null, new Conv2dOptions(), "conv2"));
        Assert.Equal("conv2", e.Node);
        Assert.Contains("node 'conv2'", e.Message);
        Assert.Contains("[1, 3, 32, 32] has 3 channels but weight [64, 16, 3, 3] expects 16 (groups 1)", e.Message);
    }

    [Fact]
    public void OtherMismatches_NameNodeAndShapes()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(1, 4, 5, 5));
        var w = Weight(b, "w", 6, 4, 3, 3);
        void Check(string node, Func<Value> add, params string[] parts)
        {
            var e = Assert.Throws<ShapeMismatchException>(() => add());
            Assert.Contains($"node '{node}'", e.Message);
            foreach (var p in parts) Assert.Contains(p, e.Message);
        }
        Check("bad_bias", () => b.Conv2d(x, w, Weight(b, "b5", 5), new Conv2dOptions(), "bad_bias"), "[5]", "[6, 4, 3, 3]");
        Check("bad_groups", () => b.Conv2d(x, w, null, new Conv2dOptions(groups: 3), "bad_groups"), "groups 3", "[1, 4, 5, 5]");
        Check("too_big", () => b.Conv2d(x, Weight(b, "w7", 6, 4, 7, 7), null, new Conv2dOptions(), "too_big"), "[1, 4, 5, 5]", "[6, 4, 7, 7]");
        Check("rank", () => b.Conv2d(b.Input("flat", new Shape(4, 25)), w, null, new Conv2dOptions(), "rank"), "[4, 25]");
        Check("pool", () => b.MaxPool2d(x, 6, name: "pool"), "[1, 4, 5, 5]");
        Check("add", () => b.Add(x, b.Input("x2", new Shape(1, 4, 5, 4)), "add"), "[1, 4, 5, 5]", "[1, 4, 5, 4]");
        Check("arity", () => b.Apply("arity", new ReluOp(), x, x), "relu takes 1 inputs, got 2");
    }

    [Fact]
    public void DefaultNames_AreKindPlusCounter_AndNamesAreUnique()
    {
        var b = new GraphBuilder();
        var x = b.Input("x", new Shape(1, 1, 4, 4));
        var r1 = b.Relu(x);
        var r2 = b.Relu(r1);
        var l = b.LeakyRelu(r2, name: "relu_3");
        var r4 = b.Relu(l);
        Assert.Equal(["relu_1", "relu_2", "relu_4"], new[] { r1.Name, r2.Name, r4.Name });
        Assert.Throws<ArgumentException>(() => b.Relu(x, "relu_1"));
        Assert.Throws<ArgumentException>(() => b.Input("x", new Shape(1)));
        Assert.Throws<ArgumentException>(() => b.Constant("relu_2", [1f], new Shape(1)));
        Assert.Throws<ArgumentException>(() => b.Constant("c", [1f, 2f], new Shape(3)));
        Assert.Throws<ArgumentException>(() => new GraphBuilder().Relu(x));
        b.Output("y", r4);
        Assert.Throws<ArgumentException>(() => b.Output("y", r2));
        var g = b.Build();
        Assert.Equal(4, g.Nodes.Count);
        Assert.Throws<InvalidOperationException>(() => b.Relu(x));
    }

    [Fact]
    public void Describe_ListsNodesShapesAndBuffers()
    {
        var b = new GraphBuilder();
        var x = b.Input("image", new Shape(1, 3, 8, 8));
        var c = b.Conv2d(x, Weight(b, "conv1.weight", 4, 3, 3, 3), Weight(b, "conv1.bias", 4),
            new Conv2dOptions(padding: 1, act: Activation.LeakyRelu, slope: 0.1f), "conv1");
        var p = b.MaxPool2d(c, 2, name: "pool1");
        b.Output("features", b.Relu(p));
        string text = b.Build().Describe();
        Assert.Contains("conv1 = conv2d(stride=1x1 pad=(1,1,1,1) dil=1x1 groups=1 act=LeakyRelu(0.1))(image [1, 3, 8, 8], conv1.weight [4, 3, 3, 3], conv1.bias [4]) -> [1, 4, 8, 8]", text);
        Assert.Contains("pool1 = max_pool2d(k=2 stride=2 pad=0 dil=1)(conv1 [1, 4, 8, 8]) -> [1, 4, 4, 4]  [arena @ 1024, 256 B, live 1..2]", text);
        Assert.Contains("relu_1 = relu(pool1 [1, 4, 4, 4]) -> [1, 4, 4, 4]  [output buffer", text);
        Assert.Contains("output   features = relu_1 [1, 4, 4, 4]", text);
    }
}
