using GpuAnomaly.Engine;

namespace GpuAnomaly.Cli.Images;

/// <summary>One image of a dataset: anomalous when it is not under a `good` folder; its mask, when the dataset has one.</summary>
public sealed record AnomalySample(string ImagePath, bool IsAnomalous, string Defect, string? MaskPath);

/// <summary>A dataset folder that does not have Anomalib's Folder/MVTec layout.</summary>
public sealed class DatasetLayoutException(string message) : GpuAnomalyException(message);

/// <summary>
/// Anomalib's Folder/MVTec AD layout: `train/good/*` (normal training images), `test/good/*`,
/// `test/&lt;defect&gt;/*`, and optionally `ground_truth/&lt;defect&gt;/&lt;name&gt;_mask.png` for the
/// anomalous test images. Files are listed in ordinal name order, so runs are reproducible.
/// </summary>
public sealed class AnomalyFolder
{
    private AnomalyFolder(string root, IReadOnlyList<AnomalySample> train, IReadOnlyList<AnomalySample> test)
    {
        Root = root;
        Train = train;
        Test = test;
    }

    public string Root { get; }
    public IReadOnlyList<AnomalySample> Train { get; }
    public IReadOnlyList<AnomalySample> Test { get; }
    public bool HasMasks => Test.Any(s => s.MaskPath is not null);

    public static AnomalyFolder Open(string root)
    {
        if (!Directory.Exists(root)) throw new DatasetLayoutException($"{root}: no such directory");
        string trainGood = Path.Combine(root, "train", "good"), test = Path.Combine(root, "test");
        var train = Directory.Exists(trainGood) ? Images(trainGood).Select(p => new AnomalySample(p, false, "good", null)).ToList() : [];
        var testSamples = new List<AnomalySample>();
        if (Directory.Exists(test))
        {
            foreach (string dir in Directory.GetDirectories(test).Order(StringComparer.Ordinal))
            {
                string defect = Path.GetFileName(dir);
                bool anomalous = defect != "good";
                foreach (string image in Images(dir))
                {
                    string mask = Path.Combine(root, "ground_truth", defect, Path.GetFileNameWithoutExtension(image) + "_mask.png");
                    testSamples.Add(new AnomalySample(image, anomalous, defect, anomalous && File.Exists(mask) ? mask : null));
                }
            }
        }
        if (train.Count == 0 && testSamples.Count == 0)
            throw new DatasetLayoutException($"{root}: no images under train/good or test/<defect> (expected Anomalib's Folder/MVTec layout)");
        return new AnomalyFolder(root, train, testSamples);
    }

    private static IEnumerable<string> Images(string dir) =>
        Directory.GetFiles(dir).Where(ImageFile.IsImage).Order(StringComparer.Ordinal);
}
