using System.Collections;

namespace GpuAnomaly.Engine;

/// <summary>An immutable tensor shape (row-major). Dimensions are non-negative.</summary>
public sealed class Shape : IEquatable<Shape>, IReadOnlyList<int>
{
    private readonly int[] _dims;

    public Shape(params int[] dims)
    {
        foreach (int d in dims)
            if (d < 0) throw new ArgumentException($"shape {Format(dims)} has a negative dimension");
        _dims = (int[])dims.Clone();
        long n = 1;
        foreach (int d in _dims)
        {
            n *= d;
            if (n > (1L << 40)) throw new ArgumentException($"shape {Format(dims)} has more than 2^40 elements");
        }
        Elements = n;
    }

    public int Rank => _dims.Length;
    public int Count => _dims.Length;
    public int this[int i] => _dims[i < 0 ? _dims.Length + i : i];
    public long Elements { get; }
    public ReadOnlySpan<int> Dims => _dims;

    public long Bytes(DType t) => Elements * t.ElementSize();

    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (int d in _dims) h.Add(d);
        return h.ToHashCode();
    }
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)_dims).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _dims.GetEnumerator();

    public override string ToString() => Format(_dims);
    private static string Format(int[] dims) => "[" + string.Join(", ", dims) + "]";
}
