namespace GpuAnomaly.Models.PatchNetworks;

/// <summary>
/// The Uninformed Students patch networks (Bergmann et al., CVPR 2020; shared/METHODS.md §1):
/// the layer sequence for each patch size p. Channel counts are read from the weights, so
/// any width works; kernel sizes are checked against this table.
/// </summary>
public static class PatchNetworkArchitecture
{
    /// <summary>A layer of the patch-wise network: a conv of kernel K, or a 2x2 stride-2 max pool (K = 2).</summary>
    public readonly record struct Layer(bool IsPool, int Kernel);

    private static Layer C(int k) => new(false, k);
    private static readonly Layer Pool = new(true, 2);

    /// <summary>Layer index i matches PyTorch's `layers.{i}` in the state_dict (pools have no weights).</summary>
    public static IReadOnlyList<Layer> Layers(int p) => p switch
    {
        17 => [C(6), C(5), C(5), C(4)],
        33 => [C(5), Pool, C(5), Pool, C(2), C(4)],
        65 => [C(5), Pool, C(5), Pool, C(5), Pool, C(4), C(1)],
        _ => throw new ArgumentException($"patch size {p} is not one of the Uninformed Students networks (17, 33, 65)"),
    };

    /// <summary>LeakyReLU slope after every conv but the last.</summary>
    public const float LeakyReluSlope = 5e-3f;
}
