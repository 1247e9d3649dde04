using GpuAnomaly.Cli.Images;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

public class ImageFileTests
{
    [Fact]
    public void Png_RoundTrips_GrayAndRgb()
    {
        string path = Path.Combine(Path.GetTempPath(), $"img-{Guid.NewGuid():N}.png");
        try
        {
            var rng = KernelLab.NewRng(out int seed);
            int w = rng.Next(1, 40), h = rng.Next(1, 40);
            var rgb = new byte[w * h * 3];
            rng.NextBytes(rgb);
            ImageFile.WritePng(path, rgb, w, h);
            var back = ImageFile.Load(path, 3);
            Assert.True(back.Width == w && back.Height == h, $"seed {seed}");
            Assert.Equal(rgb, back.Pixels);
            var gray = ImageFile.Load(path, 1);
            Assert.Equal(w * h, gray.Pixels.Length);
            var t = ImageFile.ToTensor(back, h, w); // same size: planar copy / 255
            Assert.Equal(rgb[3 * (w * h - 1) + 2] / 255f, t[2 * w * h + w * h - 1]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ToTensor_ResizesLikePyTorchBilinear()
    {
        // F.interpolate([[10,20,30],[40,50,60]], size=(4,5), mode="bilinear", align_corners=False) / 255, from PyTorch 1.13.
        float[] expected = [0.0392f, 0.0549f, 0.0784f, 0.102f, 0.1176f, 0.0686f, 0.0843f, 0.1078f, 0.1314f, 0.1471f,
            0.1275f, 0.1431f, 0.1667f, 0.1902f, 0.2059f, 0.1569f, 0.1725f, 0.1961f, 0.2196f, 0.2353f];
        var t = ImageFile.ToTensor(new DecodedImage(3, 2, 1, [10, 20, 30, 40, 50, 60]), 4, 5);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], t[i], 4);
    }

    [Fact]
    public void Undecodable_NamesTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.png");
        try
        {
            File.WriteAllBytes(path, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
            var e = Assert.Throws<ImageDecodeException>(() => ImageFile.Load(path, 1));
            Assert.Contains(Path.GetFileName(path), e.Message);
            Assert.Throws<ImageDecodeException>(() => ImageFile.Load(path + ".missing", 1));
        }
        finally { File.Delete(path); }
    }
}
