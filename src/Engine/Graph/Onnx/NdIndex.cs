namespace GpuAnomaly.Engine;

/// <summary>
/// Row-major index arithmetic of n-dimensional arrays, shared by the cpu ops (float) and the import-time host
/// evaluator (float64): one implementation of each op's indexing, instantiated at two precisions.
/// </summary>
public static class NdIndex
{
    public static long Elements(ReadOnlySpan<int> dims)
    {
        long n = 1;
        foreach (int d in dims) n *= d;
        return n;
    }

    /// <summary>The array as [outer, dims[axis], inner] around an axis (what an op along one axis walks).</summary>
    public static (long Outer, int N, long Inner) Split(ReadOnlySpan<int> dims, int axis) =>
        (Elements(dims[..axis]), dims[axis], Elements(dims[(axis + 1)..]));

    /// <summary>Row-major strides, in elements.</summary>
    public static long[] Strides(ReadOnlySpan<int> dims)
    {
        var s = new long[dims.Length];
        long acc = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= dims[i];
        }
        return s;
    }

    /// <summary>numpy's broadcast of two shapes; null when they do not broadcast.</summary>
    public static int[]? Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            int db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (da == db || db == 1) r[i] = da;
            else if (da == 1) r[i] = db;
            else return null;
        }
        return r;
    }

    /// <summary>
    /// Strides of <paramref name="dims"/> read as the broadcast shape <paramref name="target"/> (right-aligned): 0 along
    /// the axes it repeats.
    /// </summary>
    public static long[] BroadcastStrides(ReadOnlySpan<int> dims, ReadOnlySpan<int> target)
    {
        var own = Strides(dims);
        var s = new long[target.Length];
        int off = target.Length - dims.Length;
        for (int i = 0; i < dims.Length; i++) s[off + i] = dims[i] == 1 ? 0 : own[i];
        return s;
    }

    /// <summary>ONNX's axis convention: negative counts from the end; out of range is an ArgumentException.</summary>
    public static int Axis(long axis, int rank, string what = "axis")
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank, 1) && !(rank == 0 && a == 0))
            throw new ArgumentException($"{what} {axis} is out of range for rank {rank}");
        return (int)a;
    }
}
