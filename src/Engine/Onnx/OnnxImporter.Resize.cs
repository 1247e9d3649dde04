using GpuAnomaly.Kernels.Resize;
using C = GpuAnomaly.Engine.Onnx.OnnxImporter.Context;

namespace GpuAnomaly.Engine.Onnx;

/// <summary>Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9) on <see cref="ResizeOp"/>; scales, sizes and roi must be known at import.</summary>
public static partial class OnnxImporter
{
    private static void AddResize(Dictionary<string, Action<C, OnnxNode>> e)
    {
        e["Resize"] = Resize;
        e["Upsample"] = (c, n) =>
        {
            // Upsample: scales as an attribute (opset 7) or input 1 (9); asymmetric coordinates, nearest rounds down.
            var x = c.In(n, 0);
            double[] scales = c.Has(n, 1) ? c.Const(n, 1).Data : n.GetFloats("scales").Select(f => (double)f).ToArray();
            var mode = ParseMode(c, n, n.GetString("mode", "nearest"));
            EmitResize(c, n, x, scales, null, null, new ResizeOptions(mode, ResizeCoordinate.Asymmetric, ResizeNearest.Floor));
        };
    }

    private static void Resize(C c, OnnxNode n)
    {
        var x = c.In(n, 0);
        int rank = x.Shape.Rank;
        var mode = ParseMode(c, n, n.GetString("mode", "nearest"));
        if (c.Opset < 11)
        {
            // Resize-10: X, scales; asymmetric coordinates and nearest rounding down, as Upsample.
            EmitResize(c, n, x, c.Const(n, 1).Data, null, null, new ResizeOptions(mode, ResizeCoordinate.Asymmetric, ResizeNearest.Floor));
            return;
        }
        if (n.GetInt("antialias", 0) != 0) throw new OnnxFeatureException(c.Model.File, n.Location, "Resize(antialias)");
        string coordName = n.GetString("coordinate_transformation_mode", "half_pixel");
        var coord = coordName switch
        {
            "half_pixel" => ResizeCoordinate.HalfPixel, "pytorch_half_pixel" => ResizeCoordinate.PytorchHalfPixel,
            "align_corners" => ResizeCoordinate.AlignCorners, "asymmetric" => ResizeCoordinate.Asymmetric,
            "tf_half_pixel_for_nn" => ResizeCoordinate.TfHalfPixelForNn, "tf_crop_and_resize" => ResizeCoordinate.TfCropAndResize,
            "half_pixel_symmetric" => ResizeCoordinate.HalfPixelSymmetric,
            _ => throw c.Error(n, $"Resize coordinate_transformation_mode '{coordName}'"),
        };
        string nearestName = n.GetString("nearest_mode", "round_prefer_floor");
        var nearest = nearestName switch
        {
            "round_prefer_floor" => ResizeNearest.RoundPreferFloor, "round_prefer_ceil" => ResizeNearest.RoundPreferCeil,
            "floor" => ResizeNearest.Floor, "ceil" => ResizeNearest.Ceil,
            _ => throw c.Error(n, $"Resize nearest_mode '{nearestName}'"),
        };
        var options = new ResizeOptions(mode, coord, nearest, n.GetFloat("cubic_coeff_a", -0.75f), n.GetInt("exclude_outside", 0) != 0,
            n.GetFloat("extrapolation_value", 0f));
        // Opset 18's axes: scales, sizes and roi name only these axes (the others keep their size).
        var axes = n.HasAttribute("axes") ? n.GetInts("axes").Select(a => NdIndex.Axis(a, rank)).ToArray() : Enumerable.Range(0, rank).ToArray();
        double[]? Given(int i) => c.Has(n, i) && c.Const(n, i).Data.Length > 0 ? c.Const(n, i).Data : null;
        double[]? scales = Given(2), sizes = Given(3), roi = Given(1);
        if ((scales is null) == (sizes is null)) throw c.Error(n, "Resize needs exactly one of scales and sizes");
        if ((scales ?? sizes)!.Length != axes.Length) throw c.Error(n, $"Resize has {(scales ?? sizes)!.Length} scales / sizes for {axes.Length} axes of {x.Shape}");
        double[] fullScales = Enumerable.Repeat(1.0, rank).ToArray();
        int[]? fullSizes = null;
        if (scales is not null)
            for (int k = 0; k < axes.Length; k++) fullScales[axes[k]] = scales[k];
        else
        {
            fullSizes = x.Shape.Dims.ToArray();
            string policy = n.GetString("keep_aspect_ratio_policy", "stretch");
            var ratios = axes.Select((a, k) => sizes![k] / x.Shape[a]).ToArray();
            if (policy is "not_larger" or "not_smaller")
            {
                // One scale for the named axes, the output rounded: onnx's keep_aspect_ratio_policy.
                double s = policy == "not_larger" ? ratios.Min() : ratios.Max();
                for (int k = 0; k < axes.Length; k++) (fullScales[axes[k]], fullSizes[axes[k]]) = (s, (int)Math.Round(s * x.Shape[axes[k]], MidpointRounding.ToEven));
            }
            else if (policy == "stretch")
                for (int k = 0; k < axes.Length; k++) (fullScales[axes[k]], fullSizes[axes[k]]) = (ratios[k], checked((int)sizes![k]));
            else throw c.Error(n, $"Resize keep_aspect_ratio_policy '{policy}'");
        }
        double[]? fullRoi = null;
        if (coord == ResizeCoordinate.TfCropAndResize)
        {
            if (roi is null || roi.Length != 2 * axes.Length) throw c.Error(n, $"Resize tf_crop_and_resize needs a roi of {2 * axes.Length} values");
            fullRoi = [.. Enumerable.Repeat(0.0, rank), .. Enumerable.Repeat(1.0, rank)];
            for (int k = 0; k < axes.Length; k++) (fullRoi[axes[k]], fullRoi[axes[k] + rank]) = (roi[k], roi[k + axes.Length]);
        }
        EmitResize(c, n, x, fullScales, fullSizes, fullRoi, options);
    }

    private static ResizeMode ParseMode(C c, OnnxNode n, string mode) => mode switch
    {
        "nearest" => ResizeMode.Nearest, "linear" or "bilinear" => ResizeMode.Linear, "cubic" => ResizeMode.Cubic,
        _ => throw c.Error(n, $"{n.OpType} mode '{mode}'"),
    };

    /// <summary>Sizes from the scales when not given: floor(scale * size), as onnx.</summary>
    private static void EmitResize(C c, OnnxNode n, OnnxSym x, double[] scales, int[]? sizes, double[]? roi, ResizeOptions options)
    {
        if (scales.Length != x.Shape.Rank) throw c.Error(n, $"{n.OpType} has {scales.Length} scales for {x.Shape}");
        if (scales.Any(s => !(s > 0) || double.IsInfinity(s))) throw c.Error(n, $"{n.OpType} scales [{string.Join(", ", scales)}] must be positive");
        sizes ??= scales.Select((s, a) => checked((int)Math.Floor(s * x.Shape[a]))).ToArray();
        c.Emit(n, new ResizeOp(sizes, scales, options, roi), [x], x.Type);
    }
}
