namespace GpuAnomaly.Models.Anomaly;

/// <summary>
/// Heat-map pictures of a normalized anomaly map (0..1) as RGB bytes, row-major; the CLI encodes them
/// (PNG). The colour map is "jet" (blue = normal, red = anomalous), the one Anomalib's visualizer uses.
/// </summary>
public static class HeatMap
{
    /// <summary>Jet colour of v in [0, 1] (NaN and out-of-range values are clamped; NaN is drawn as 0).</summary>
    public static (byte R, byte G, byte B) Jet(float v)
    {
        float t = float.IsNaN(v) ? 0f : Math.Clamp(v, 0f, 1f);
        static byte Channel(float x) => (byte)Math.Round(255 * Math.Clamp(1.5f - Math.Abs(x), 0f, 1f));
        // Piecewise-linear ramps centred at 0.75 (red), 0.5 (green) and 0.25 (blue), as matplotlib's jet.
        return (Channel(4 * t - 3), Channel(4 * t - 2), Channel(4 * t - 1));
    }

    /// <summary>
    /// Blends the jet colours of <paramref name="map"/> over the image: out = (1 - alpha) image + alpha colour.
    /// <paramref name="image"/> is gray (channels 1) or RGB (channels 3), the same width x height as the map.
    /// </summary>
    public static byte[] Overlay(ReadOnlySpan<float> map, ReadOnlySpan<byte> image, int width, int height, int channels, float alpha = 0.5f)
    {
        if (width < 1 || height < 1 || map.Length != width * height)
            throw new ArgumentException($"heat map: a {width}x{height} map needs {width * height} values, got {map.Length}");
        if (channels is not (1 or 3) || image.Length != map.Length * channels)
            throw new ArgumentException($"heat map: image of {image.Length} bytes is not {width}x{height}x{channels} (channels 1 or 3)");
        if (!(alpha >= 0f && alpha <= 1f)) throw new ArgumentException($"heat map: alpha {alpha} is not in [0, 1]");
        var rgb = new byte[map.Length * 3];
        for (int i = 0; i < map.Length; i++)
        {
            var (r, g, b) = Jet(map[i]);
            byte ir = image[i * channels], ig = image[i * channels + (channels == 3 ? 1 : 0)], ib = image[i * channels + (channels == 3 ? 2 : 0)];
            rgb[3 * i] = Blend(ir, r, alpha);
            rgb[3 * i + 1] = Blend(ig, g, alpha);
            rgb[3 * i + 2] = Blend(ib, b, alpha);
        }
        return rgb;
    }

    private static byte Blend(byte under, byte over, float alpha) => (byte)Math.Round((1 - alpha) * under + alpha * over);
}
