using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>ConvTranspose (1-D to 3-D) on <see cref="ConvTransposeOp"/>: the output size from pads, output_padding, output_shape or auto_pad.</summary>
public static partial class OnnxImporter
{
    private static void AddConvTranspose(Dictionary<string, Action<C, OnnxNode>> e) => e["ConvTranspose"] = ConvTranspose;

    private static void ConvTranspose(C c, OnnxNode n)
    {
        var x = c.In(n, 0);
        var w = c.In(n, 1);
        int sp = x.Shape.Rank - 2;
        if (sp is < 1 or > 3 || w.Shape.Rank != sp + 2) throw c.Error(n, $"ConvTranspose of {x.Shape} with weight {w.Shape} (1 to 3 spatial axes)");
        var k = w.Shape.Dims[2..].ToArray();
        if (n.HasAttribute("kernel_shape") && !n.GetInts("kernel_shape").Select(v => (int)v).SequenceEqual(k))
            throw c.Error(n, $"ConvTranspose kernel_shape [{string.Join(", ", n.GetInts("kernel_shape"))}] does not match weight {w.Shape}");
        int[] Ints(string name, int dflt) => n.GetInts(name, Enumerable.Repeat((long)dflt, sp).ToArray()).Select(v => checked((int)v)).ToArray();
        int[] s = Ints("strides", 1), d = Ints("dilations", 1), outPad = Ints("output_padding", 0);
        if (s.Length != sp || d.Length != sp || outPad.Length != sp) throw c.Error(n, $"ConvTranspose strides / dilations / output_padding for {sp} spatial axes");
        string auto = n.GetString("auto_pad", "NOTSET");
        var begin = new int[sp];
        var size = new int[sp];
        // The size before any padding is removed: stride * (in - 1) + output_padding + the dilated kernel.
        long Full(int a) => (long)s[a] * (x.Shape[a + 2] - 1) + outPad[a] + (long)(k[a] - 1) * d[a] + 1;
        if (n.HasAttribute("output_shape") || auto is "SAME_UPPER" or "SAME_LOWER")
        {
            long[] target = n.HasAttribute("output_shape") ? n.GetInts("output_shape").ToArray()[^sp..]
                : Enumerable.Range(0, sp).Select(a => (long)x.Shape[a + 2] * s[a]).ToArray();
            for (int a = 0; a < sp; a++)
            {
                long total = Full(a) - target[a];
                // A target past the full output (negative total padding) extends it at the end with bias-only pixels.
                if (target[a] < 1) throw c.Error(n, $"ConvTranspose output size {target[a]} on axis {a + 2}");
                // SAME_LOWER puts the odd pixel at the beginning (onnx's reference, both with and without output_shape).
                begin[a] = (int)(auto == "SAME_LOWER" ? total - total / 2 : total / 2);
                size[a] = checked((int)target[a]);
            }
        }
        else if (auto is "NOTSET" or "VALID")
        {
            var p = auto == "VALID" ? new long[2 * sp] : n.GetInts("pads", new long[2 * sp]).ToArray();
            if (p.Length != 2 * sp) throw c.Error(n, $"ConvTranspose pads has {p.Length} values for {sp} spatial axes");
            for (int a = 0; a < sp; a++)
            {
                begin[a] = checked((int)p[a]);
                long o = Full(a) - p[a] - p[a + sp];
                if (o < 0) throw c.Error(n, $"ConvTranspose pads remove more than the output of axis {a + 2}");
                size[a] = checked((int)o);
            }
        }
        else throw c.Error(n, $"auto_pad '{auto}'");
        var inputs = c.Has(n, 2) ? new[] { x, w, c.In(n, 2) } : [x, w];
        c.Emit(n, new ConvTransposeOp(s, d, begin, size, checked((int)n.GetInt("group", 1))), inputs, x.Type);
    }
}
