namespace GpuAnomaly.Kernels;

/// <summary>
/// Four floats moved as one 16-byte access (ld/st .v4 in PTX) by memory-bound kernels. Public:
/// ILGPU kernel parameter types (here ArrayView&lt;Float4&gt;) must be visible to its runtime assembly.
/// </summary>
public struct Float4
{
    public float X, Y, Z, W;

    public Float4(float x, float y, float z, float w)
    {
        X = x;
        Y = y;
        Z = z;
        W = w;
    }
}
