namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// The 2-bit packed layout of ternary weights (docs/FORMATS.md, "T2"): a weight w in {-1, 0, +1}
/// is stored as the code w + 1 (0, 1, 2; code 3 is invalid). A matrix of R rows and K columns
/// (a conv weight [COut, CIn/groups, KH, KW] is R = COut, K = CIn/groups*KH*KW) becomes R rows of
/// <see cref="Words"/>(K) little-endian uint32 words; weight k of a row sits in word k / 16 at bits
/// 2*(k % 16) .. 2*(k % 16)+1. Rows are padded to a whole word with code 1 (weight 0), so a kernel
/// may decode whole words; it must still not read activations beyond K.
/// </summary>
public static class TernaryPacking
{
    public const int WeightsPerWord = 16;
    /// <summary>Code of the zero weight; also the padding code.</summary>
    public const uint ZeroCode = 1;
    /// <summary>A word whose 16 codes are all the zero weight (0x5555_5555).</summary>
    public const uint ZeroWord = 0x5555_5555u;

    /// <summary>uint32 words per packed row of K weights.</summary>
    public static int Words(int k) => (k + WeightsPerWord - 1) / WeightsPerWord;

    /// <summary>Bytes of a packed [rows, K] matrix.</summary>
    public static long Bytes(long rows, int k) => rows * Words(k) * 4L;

    /// <summary>Packs row-major ternary values [rows, K] (each -1, 0 or +1).</summary>
    public static uint[] Pack(ReadOnlySpan<sbyte> values, int rows, int k)
    {
        Check(rows, k);
        if (values.Length != (long)rows * k)
            throw new ArgumentException($"ternary pack: {values.Length} values for [{rows}, {k}]");
        int words = Words(k);
        var packed = new uint[(long)rows * words];
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * k, k);
            for (int wi = 0; wi < words; wi++)
            {
                uint word = ZeroWord;
                int k0 = wi * WeightsPerWord, n = Math.Min(WeightsPerWord, k - k0);
                for (int j = 0; j < n; j++)
                {
                    int v = row[k0 + j];
                    if (v < -1 || v > 1)
                        throw new ArgumentException($"ternary pack: value {v} at row {r}, column {k0 + j} is not -1, 0 or +1");
                    word = (word & ~(3u << (2 * j))) | ((uint)(v + 1) << (2 * j));
                }
                packed[(long)r * words + wi] = word;
            }
        }
        return packed;
    }

    /// <summary>Unpacks to row-major values [rows, K]. Throws on an invalid code (3) or non-zero padding.</summary>
    public static sbyte[] Unpack(ReadOnlySpan<uint> packed, int rows, int k)
    {
        string? problem = Validate(packed, rows, k);
        if (problem is not null) throw new ArgumentException($"ternary unpack: {problem}");
        int words = Words(k);
        var values = new sbyte[(long)rows * k];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < k; c++)
                values[(long)r * k + c] = Decode(packed[r * words + c / WeightsPerWord], c % WeightsPerWord);
        return values;
    }

    /// <summary>The weight at position j (0..15) of a word.</summary>
    public static sbyte Decode(uint word, int j) => (sbyte)((int)((word >> (2 * j)) & 3u) - 1);

    /// <summary>Null when <paramref name="packed"/> is a valid [rows, K] matrix, else what is wrong (for load-time errors).</summary>
    public static string? Validate(ReadOnlySpan<uint> packed, int rows, int k)
    {
        if (rows < 1 || k < 1) return $"shape [{rows}, {k}] must be positive";
        int words = Words(k);
        if (packed.Length != (long)rows * words)
            return $"{packed.Length} words, expected {(long)rows * words} for [{rows}, {k}] ({words} words per row)";
        int tail = k % WeightsPerWord;
        uint padMask = tail == 0 ? 0u : ~((1u << (2 * tail)) - 1);
        for (int r = 0; r < rows; r++)
        {
            for (int wi = 0; wi < words; wi++)
            {
                uint word = packed[r * words + wi];
                // Code 3 has both bits set: (word & (word >> 1)) has bit 2j set for each such code.
                uint threes = word & (word >> 1) & ZeroWord;
                if (threes != 0)
                {
                    int j = System.Numerics.BitOperations.TrailingZeroCount(threes) / 2;
                    return $"invalid code 3 at row {r}, column {wi * WeightsPerWord + j}";
                }
                if (wi == words - 1 && tail != 0 && (word & padMask) != (ZeroWord & padMask))
                    return $"row {r}: padding after column {k - 1} is not the zero code";
            }
        }
        return null;
    }

    private static void Check(int rows, int k)
    {
        if (rows < 1 || k < 1) throw new ArgumentException($"ternary pack: shape [{rows}, {k}] must be positive");
    }
}
