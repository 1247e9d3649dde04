using ILGPU.Algorithms;

namespace GpuAnomaly.Kernels.Resize;

/// <summary>ONNX Resize's interpolation modes (the codes the kernels switch on).</summary>
public enum ResizeMode { Nearest = 0, Linear = 1, Cubic = 2 }

/// <summary>ONNX Resize's coordinate_transformation_mode values.</summary>
public enum ResizeCoordinate { HalfPixel = 0, PytorchHalfPixel = 1, AlignCorners = 2, Asymmetric = 3, TfHalfPixelForNn = 4, TfCropAndResize = 5, HalfPixelSymmetric = 6 }

/// <summary>ONNX Resize's nearest_mode values.</summary>
public enum ResizeNearest { RoundPreferFloor = 0, RoundPreferCeil = 1, Floor = 2, Ceil = 3 }

/// <summary>
/// The per-axis arithmetic of ONNX Resize (onnx's reference, interpolate_1d_with_x), shared by the cpu op, the float64
/// reference and the ILGPU kernel, in double so that every device picks the same nearest pixel at a .5 tie.
/// Along an axis of <c>inSize</c> pixels, output pixel x reads the input coordinate <see cref="Original"/>; nearest
/// takes one pixel, linear two (floor, floor + 1) and cubic four (floor - 1 .. floor + 2) with <see cref="Weight"/>;
/// pixels past the edges repeat the edge (or, with exclude_outside, get weight 0 and the rest is renormalized).
/// </summary>
public static class ResizeMath
{
    /// <param name="lengthResized">scale * inSize as a real number (onnx's output_width: align_corners and
    /// tf_crop_and_resize divide by it minus 1, not by the integer output size).</param>
    public static double Original(int coord, double x, int inSize, int outSize, double scale, double lengthResized, double roiStart, double roiEnd)
    {
        switch (coord)
        {
            case 1: return lengthResized > 1 ? (x + 0.5) / scale - 0.5 : -0.5;
            case 2: return lengthResized == 1 ? 0 : x * (inSize - 1) / (lengthResized - 1);
            case 3: return x / scale;
            case 4: return (x + 0.5) / scale;
            case 5:
                double d = lengthResized == 1 ? (roiEnd - roiStart) * (inSize - 1) / 2 : x * (roiEnd - roiStart) * (inSize - 1) / (lengthResized - 1);
                return d + roiStart * (inSize - 1);
            case 6:
                // opset 19: centred on the input when the integer output size rounds the real one.
                double adjust = outSize / lengthResized, offset = inSize / 2.0 * (1 - adjust);
                return offset + (x + 0.5) / scale - 0.5;
            default: return (x + 0.5) / scale - 0.5;
        }
    }

    /// <summary>tf_crop_and_resize gives the extrapolation value for a coordinate outside the input.</summary>
    public static bool Extrapolates(int coord, double xo, int inSize) => coord == 5 && (xo < 0 || xo > inSize - 1);

    /// <summary>Taps per axis: 1 nearest, 2 linear, 4 cubic.</summary>
    public static int Taps(int mode) => mode == 0 ? 1 : mode == 1 ? 2 : 4;

    /// <summary>The first tap's (unclamped) pixel: the nearest one, floor, or floor - 1.</summary>
    public static int First(int mode, int nearest, double xo)
    {
        double f = XMath.Floor(xo);
        if (mode == 1) return (int)f;
        if (mode == 2) return (int)f - 1;
        double r = xo - f;
        if (r == 0) return (int)f;
        bool up = nearest switch { 0 => r > 0.5, 1 => r >= 0.5, 2 => false, _ => true };
        return (int)f + (up ? 1 : 0);
    }

    /// <summary>The weight of tap <paramref name="t"/> at ratio r = xo - floor(xo) (cubic: Keys' kernel with coefficient a).</summary>
    public static double Weight(int mode, double xo, int t, double a)
    {
        if (mode == 0) return 1;
        double r = xo - XMath.Floor(xo);
        if (mode == 1) return t == 0 ? 1 - r : r;
        double s = t switch { 0 => r + 1, 1 => r, 2 => 1 - r, _ => 2 - r };
        return s <= 1 ? ((a + 2) * s - (a + 3)) * s * s + 1 : ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    }

    /// <summary>
    /// Whether exclude_outside applies along an axis at this coordinate: cubic only (as ONNX Runtime; nearest and linear
    /// taps past the edge equal the edge pixel anyway), and not when every tap is outside (nothing to renormalize).
    /// </summary>
    public static bool Excludes(int mode, bool excludeOutside, int first, int inSize) =>
        excludeOutside && mode == 2 && first + 3 >= 0 && first < inSize;

    /// <summary>When <see cref="Excludes"/>, the sum of the weights of the taps inside the input (to renormalize by); else 1.</summary>
    public static double InsideSum(int mode, bool excludes, double xo, int first, int inSize, double a)
    {
        if (!excludes) return 1;
        double s = 0;
        for (int t = 0; t < Taps(mode); t++)
            if (first + t >= 0 && first + t < inSize) s += Weight(mode, xo, t, a);
        return s;
    }

    public static int Clamp(int i, int size) => i < 0 ? 0 : i >= size ? size - 1 : i;
}
