using GpuAnomaly.Engine;
using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Kernels;

namespace GpuAnomaly.Models.PatchNetworks;

/// <summary>
/// Builds the dense form of a patch network into a graph: one descriptor per input pixel.
/// Each 2x2/2 max pool becomes a stride-1 pool and every later layer is dilated by the product
/// of the strides so far. The input padding of p - 1 (ceil top/left, floor bottom/right) is fused
/// into the first conv; the rows and columns the dilated form produces beyond H x W (0, 1, 5
/// for p = 17, 33, 65: the true receptive fields are 17, 32, 60) are never computed: the
/// bottom/right padding is reduced by that amount instead of cropping afterwards.
/// </summary>
public static class DensePatchNetwork
{
    /// <summary>The network `{prefix}layers.{i}` of a weight file, each conv float or ternary as stored.</summary>
    public static Value Build(GraphBuilder g, Value image, int p, string prefix, WeightLayers file) =>
        Build(g, image, p, prefix, file.WeightShape, (x, name, options) => file.Conv2d(g, x, name, options));

    /// <param name="weights">name -> (data, shape) for `{prefix}layers.{i}.weight` / `.bias` (float weights).</param>
    public static Value Build(GraphBuilder g, Value image, int p, string prefix, Func<string, (float[] Data, Shape Shape)> weights) =>
        Build(g, image, p, prefix, name => weights($"{name}.weight").Shape, (x, name, options) =>
        {
            var (w, wShape) = weights($"{name}.weight");
            var (b, bShape) = weights($"{name}.bias");
            return g.Conv2d(x, g.Constant($"{name}.weight", w, wShape), g.Constant($"{name}.bias", b, bShape), options, name);
        });

    /// <param name="weightShape">layer name -> its weight's shape, checked against the architecture.</param>
    /// <param name="conv">(input, layer name, options) -> the conv's output.</param>
    private static Value Build(GraphBuilder g, Value image, int p, string prefix, Func<string, Shape> weightShape,
        Func<Value, string, Conv2dOptions, Value> conv)
    {
        var layers = PatchNetworkArchitecture.Layers(p);
        int lastConv = -1;
        for (int i = 0; i < layers.Count; i++) if (!layers[i].IsPool) lastConv = i;

        // Dilated receptive extent minus one: how many rows the valid layers consume.
        int consumed = 0, dil = 1;
        foreach (var l in layers)
        {
            consumed += dil * (l.Kernel - 1);
            if (l.IsPool) dil *= 2;
        }
        int top = p / 2, bottom = (p - 1) / 2;
        int extra = top + bottom - consumed; // >= 0: rows beyond H
        if (extra < 0 || extra > bottom)
            throw new InvalidOperationException($"patch network p={p}: receptive field {consumed + 1} does not fit the padding");
        bottom -= extra;

        var x = image;
        dil = 1;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            string name = $"{prefix}layers.{i}";
            if (layer.IsPool)
            {
                x = g.MaxPool2d(x, 2, stride: 1, dilation: dil, name: name);
                dil *= 2;
                continue;
            }
            var wShape = weightShape(name);
            if (wShape.Rank != 4 || wShape[2] != layer.Kernel || wShape[3] != layer.Kernel)
                throw new ShapeMismatchException(name, $"weight {wShape} is not a {layer.Kernel}x{layer.Kernel} conv as the p={p} network expects");
            bool first = i == 0;
            var options = new Conv2dOptions(dilation: dil,
                act: i == lastConv ? Activation.None : Activation.LeakyRelu, slope: PatchNetworkArchitecture.LeakyReluSlope)
            {
                PadTop = first ? top : 0, PadLeft = first ? top : 0,
                PadBottom = first ? bottom : 0, PadRight = first ? bottom : 0,
            };
            x = conv(x, name, options);
        }
        return x;
    }
}
