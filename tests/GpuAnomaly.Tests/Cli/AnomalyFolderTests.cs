using GpuAnomaly.Cli.Images;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

public class AnomalyFolderTests
{
    [Fact]
    public void Open_ReadsMvtecLayout()
    {
        string root = Directory.CreateTempSubdirectory("mvtec-").FullName;
        try
        {
            void Touch(params string[] parts)
            {
                string p = Path.Combine([root, .. parts]);
                Directory.CreateDirectory(Path.GetDirectoryName(p)!);
                File.WriteAllBytes(p, [1]);
            }
            Touch("train", "good", "b.png"); Touch("train", "good", "a.png"); Touch("train", "good", "notes.txt");
            Touch("test", "good", "000.png");
            Touch("test", "scratch", "001.png"); Touch("test", "scratch", "002.jpg");
            Touch("ground_truth", "scratch", "001_mask.png");
            var f = AnomalyFolder.Open(root);
            Assert.Equal(["a.png", "b.png"], f.Train.Select(s => Path.GetFileName(s.ImagePath)));
            Assert.Equal(3, f.Test.Count);
            Assert.False(f.Test[0].IsAnomalous);
            Assert.True(f.Test[1].IsAnomalous);
            Assert.Equal("scratch", f.Test[1].Defect);
            Assert.EndsWith("001_mask.png", f.Test[1].MaskPath);
            Assert.Null(f.Test[2].MaskPath);
            Assert.True(f.HasMasks);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void Open_RejectsMissingOrEmpty()
    {
        Assert.Throws<DatasetLayoutException>(() => AnomalyFolder.Open("/nonexistent/dataset"));
        string root = Directory.CreateTempSubdirectory("empty-").FullName;
        try { Assert.Contains("layout", Assert.Throws<DatasetLayoutException>(() => AnomalyFolder.Open(root)).Message); }
        finally { Directory.Delete(root); }
    }
}
