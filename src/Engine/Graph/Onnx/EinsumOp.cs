namespace GpuAnomaly.Engine;

/// <summary>
/// Einsum over explicit subscripts (no ellipsis): "ij,jk->ik", "bij,bjk->bik", "i,i", "ii->i", "ij->ji", "ij->".
/// Without "->" the output is the letters used once, in alphabetical order (numpy's implicit mode). The plain
/// definition: every combination of the letters, the products summed into the output element they name.
/// </summary>
public sealed partial class EinsumOp : HostKernelOp
{
    private readonly string[] _operands;
    private readonly string _output;

    public EinsumOp(string equation)
    {
        Equation = equation;
        var eq = equation.Replace(" ", "");
        if (eq.Contains("...")) throw new ArgumentException($"einsum '{equation}': ellipsis is not supported");
        var parts = eq.Split("->");
        if (parts.Length > 2) throw new ArgumentException($"einsum '{equation}' has more than one ->");
        _operands = parts[0].Split(',');
        if (_operands.Any(o => o.Any(ch => !char.IsAsciiLetter(ch)))) throw new ArgumentException($"einsum '{equation}': subscripts must be letters");
        _output = parts.Length == 2 ? parts[1]
            : new string(string.Concat(_operands).GroupBy(ch => ch).Where(g => g.Count() == 1).Select(g => g.Key).Order().ToArray());
        if (_output.Distinct().Count() != _output.Length || _output.Any(ch => !_operands.Any(o => o.Contains(ch))))
            throw new ArgumentException($"einsum '{equation}': output letters must be distinct and appear in an operand");
    }

    public string Equation { get; }
    public override string Kind => "einsum";

    /// <summary>Every letter (output letters first) with its size.</summary>
    private (char[] Letters, int[] Sizes) Letters(IReadOnlyList<int[]> dims)
    {
        var size = new Dictionary<char, int>();
        for (int k = 0; k < _operands.Length; k++)
            for (int a = 0; a < _operands[k].Length; a++)
            {
                char ch = _operands[k][a];
                if (size.TryGetValue(ch, out int s) && s != dims[k][a])
                    throw new ArgumentException($"einsum '{Equation}': '{ch}' is {s} and {dims[k][a]}");
                size[ch] = dims[k][a];
            }
        var letters = _output.Concat(size.Keys.Where(ch => !_output.Contains(ch)).Order()).ToArray();
        return (letters, letters.Select(ch => size[ch]).ToArray());
    }

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        if (inputs.Count != _operands.Length) throw new ArgumentException($"einsum '{Equation}' takes {_operands.Length} inputs, got {inputs.Count}");
        for (int k = 0; k < inputs.Count; k++)
            if (inputs[k].Rank != _operands[k].Length) throw new ArgumentException($"einsum '{Equation}': operand {k} is {inputs[k]}");
        var (_, sizes) = Letters(inputs.Select(s => s.Dims.ToArray()).ToArray());
        return new Shape(sizes[.._output.Length]);
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var (letters, sizes) = Letters(dims);
        var strides = LetterStrides(letters, dims);
        var yStrides = NdIndex.Strides(yDims);
        y.Clear();
        if (sizes.Any(s => s == 0)) return;
        var idx = new int[letters.Length];
        var off = new long[_operands.Length];
        while (true)
        {
            T p = T.One;
            for (int k = 0; k < _operands.Length; k++) p *= xs(k)[(int)off[k]];
            long yo = 0;
            for (int a = 0; a < _output.Length; a++) yo += idx[a] * yStrides[a];
            y[(int)yo] += p;
            int b = letters.Length - 1;
            for (; b >= 0; b--)
            {
                for (int k = 0; k < off.Length; k++) off[k] += strides[k][b];
                if (++idx[b] < sizes[b]) break;
                for (int k = 0; k < off.Length; k++) off[k] -= strides[k][b] * sizes[b];
                idx[b] = 0;
            }
            if (b < 0) break;
        }
    }

    /// <summary>Per operand, its stride along each letter (summed where a letter repeats: the diagonal).</summary>
    private long[][] LetterStrides(char[] letters, IReadOnlyList<int[]> dims) => _operands.Select((o, k) =>
    {
        var own = NdIndex.Strides(dims[k]);
        return letters.Select(ch => Enumerable.Range(0, o.Length).Where(a => o[a] == ch).Sum(a => own[a])).ToArray();
    }).ToArray();

    public override string ToString() => $"{Kind}({Equation})";
}
