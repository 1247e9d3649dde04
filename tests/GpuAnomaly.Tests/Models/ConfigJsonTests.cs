using GpuAnomaly.Engine.Weights;
using GpuAnomaly.Models.MemoryBank;
using GpuAnomaly.Models.StudentTeacher;
using GpuAnomaly.Models.WindowVit;
using Xunit;

namespace GpuAnomaly.Tests.Models;

/// <summary>Bad config values fail with the typed error, naming the key, whatever their JSON kind.</summary>
public class ConfigJsonTests
{
    private const string Vit = """{"in_channels": 1, "image_size": [8, 8], "patch_size": 2, "embed_dim": 4, "heads": 2, "mlp_ratio": 2, "blocks": [{"kind": "sparse", "sparsity": 2}], "num_classes": 2, "mean": 0.5, "std": 0.25}""";

    private static string ParseVit(string json) =>
        Assert.Throws<SafetensorsException>(() => WindowVitConfig.Parse("m.safetensors", Meta(WindowVitConfig.Architecture, json))).Message;

    private static Dictionary<string, string> Meta(string arch, string config) => new() { ["architecture"] = arch, ["config"] = config };

    [Fact]
    public void ValidConfig_Parses() => Assert.Equal(4, WindowVitConfig.Parse("m", Meta(WindowVitConfig.Architecture, Vit)).EmbedDim);

    [Theory]
    [InlineData("\"in_channels\": 1", "\"in_channels\": \"1\"", "in_channels")]
    [InlineData("\"in_channels\": 1", "\"in_channels\": 1.5", "in_channels")]
    [InlineData("\"in_channels\": 1", "\"in_channels\": null", "in_channels")]
    [InlineData("\"image_size\": [8, 8]", "\"image_size\": [8]", "image_size")]
    [InlineData("\"image_size\": [8, 8]", "\"image_size\": {\"h\": 8}", "image_size")]
    [InlineData("[{\"kind\": \"sparse\", \"sparsity\": 2}]", "[7]", "blocks[0]")]
    [InlineData("\"mean\": 0.5", "\"mean\": 1e400", "mean")]
    [InlineData("\"mean\": 0.5", "\"mean\": [0.5]", "mean")]
    public void WrongKindOrRange_NamesTheKey(string from, string to, string key)
    {
        Assert.Contains(from, Vit);
        Assert.Contains(key, ParseVit(Vit.Replace(from, to)));
    }

    [Fact]
    public void DuplicateKeys_UnpairedSurrogates_AndNonObjects_AreTyped()
    {
        ParseVit(Vit.Replace("\"heads\": 2", "\"heads\": 2, \"heads\": 4"));
        Assert.Contains("surrogate", ParseVit(Vit.Replace("\"mean\"", "\"m\ud800ean\"")));
        // escaped in the JSON text: System.Text.Json parses it and throws InvalidOperationException on reading it
        Assert.Contains("surrogate", ParseVit(Vit.Replace("\"mean\"", "\"m\\ud800ean\"")));
        Assert.Contains("surrogate", ParseVit(Vit.Replace("\"sparse\"", "\"\\udc00\"")));
        ParseVit(Vit.Replace("\"sparse\"", "\"\\ud83d\\ude00\"")); // a valid pair: only the block kind is wrong
        ParseVit("[1, 2]");
        ParseVit("null");
        Assert.Throws<SafetensorsException>(() => UninformedStudentsConfig.Parse("m", Meta(UninformedStudentsConfig.Architecture,
            """{"scales": [17], "input_size": [28, 28], "students": 3, "in_channels": 1, "validation": {"17": 5}}""")));
        Assert.Throws<SafetensorsException>(() => MemoryBankConfig.Parse("m", Meta(MemoryBankConfig.Architecture,
            """{"in_channels": 1, "input_size": [8, 8], "features": [null], "image_score": [1]}""")));
        Assert.Throws<SafetensorsException>(() => MemoryBankConfig.Parse("m", Meta(MemoryBankConfig.Architecture,
            """{"in_channels": 1, "input_size": [8, 8], "features": [{"kind": "pixels", "patch": 2, "stride": 1, "blur": 0}], "locally_aware": 1}""")));
    }
}
