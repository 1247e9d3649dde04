using GpuAnomaly.Engine;
using GpuAnomaly.Models;
using GpuAnomaly.Models.Anomaly;
using Xunit;

namespace GpuAnomaly.Tests.Models;

public class BundledModelsTests
{
    [Fact]
    public void DefaultPath_IsTheMemoryBankBesideTheBinaries()
    {
        string path = BundledModels.DefaultPath;
        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "models", BundledModels.MemoryBankDefault), path);
        Assert.Equal("memory_bank", AnomalyModel.ArchitectureOf(path));
        Assert.True(File.Exists(BundledModels.Resolve(BundledModels.UninformedStudentsDefault)));
        Assert.True(File.Exists(BundledModels.Resolve(BundledModels.WindowVitFashionMnist)));
    }

    [Fact]
    public void Resolve_MissingFile_ThrowsATypedErrorNamingThePath()
    {
        var e = Assert.Throws<BundledModelNotFoundException>(() => BundledModels.Resolve("no_such_model.safetensors"));
        Assert.IsAssignableFrom<FileNotFoundException>(e);
        Assert.Equal(BundledModels.PathOf("no_such_model.safetensors"), e.FileName);
        Assert.Contains("GpuAnomaly.Models", e.Message);
    }

    [Fact]
    public void DefaultModel_LoadsOnTheCpu()
    {
        using var device = Device.Open("cpu");
        using var model = AnomalyModel.Load(BundledModels.DefaultPath, device, batch: 1);
        Assert.NotNull(model.ImageScore);
    }
}
