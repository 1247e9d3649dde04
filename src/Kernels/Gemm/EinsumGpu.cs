using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.Gemm;

/// <summary>
/// An einsum of one or two operands as two walks, right-aligned to <see cref="MaxRank"/> letters each: the output
/// letters (dims D; the output is row-major over them) with the operands' strides A, B along them, and the summed
/// letters (dims R, the last fastest) with strides E, F. A letter repeated in an operand has the sum of its axes'
/// strides (a diagonal). One operand: B and F are unused.
/// </summary>
public struct EinsumLayout
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;
    public int A0, A1, A2, A3, A4, A5;
    public int B0, B1, B2, B3, B4, B5;
    public int R0, R1, R2, R3, R4, R5;
    public int E0, E1, E2, E3, E4, E5;
    public int F0, F1, F2, F3, F4, F5;
    public int Operands;

    public readonly long Outputs => (long)D0 * D1 * D2 * D3 * D4 * D5;
    public readonly long Count => (long)R0 * R1 * R2 * R3 * R4 * R5;

    /// <summary>
    /// From the letters' sizes (output letters first, <paramref name="outputs"/> of them) and each operand's stride per
    /// letter. Letters of size 1 fold away (they change no offset and no order); null when an operand count other than
    /// 1 or 2, or more than <see cref="MaxRank"/> letters on a side, remain.
    /// </summary>
    public static EinsumLayout? Create(int[] sizes, int outputs, IReadOnlyList<long[]> strides)
    {
        if (strides.Count is < 1 or > 2) return null;
        var outs = new List<int>();
        var sums = new List<int>();
        for (int i = 0; i < sizes.Length; i++)
            if (sizes[i] != 1) (i < outputs ? outs : sums).Add(i);
        if (outs.Count > MaxRank || sums.Count > MaxRank) return null;
        var s1 = strides.Count > 1 ? strides[1] : new long[sizes.Length];
        int[] Pack(List<int> letters, Func<int, long> f, int fill)
        {
            var r = new int[MaxRank];
            Array.Fill(r, fill);
            for (int i = 0; i < letters.Count; i++) r[MaxRank - letters.Count + i] = checked((int)f(letters[i]));
            return r;
        }
        int[] d = Pack(outs, i => sizes[i], 1), a = Pack(outs, i => strides[0][i], 0), b = Pack(outs, i => s1[i], 0);
        int[] r = Pack(sums, i => sizes[i], 1), e = Pack(sums, i => strides[0][i], 0), f = Pack(sums, i => s1[i], 0);
        return new EinsumLayout
        {
            D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5],
            A0 = a[0], A1 = a[1], A2 = a[2], A3 = a[3], A4 = a[4], A5 = a[5],
            B0 = b[0], B1 = b[1], B2 = b[2], B3 = b[3], B4 = b[4], B5 = b[5],
            R0 = r[0], R1 = r[1], R2 = r[2], R3 = r[3], R4 = r[4], R5 = r[5],
            E0 = e[0], E1 = e[1], E2 = e[2], E3 = e[3], E4 = e[4], E5 = e[5],
            F0 = f[0], F1 = f[1], F2 = f[2], F3 = f[3], F4 = f[4], F5 = f[5],
            Operands = strides.Count,
        };
    }
}

/// <summary>
/// Einsum on an ILGPU accelerator: one thread per output element (implicitly grouped, grid-stride) summing the products
/// over the summed letters in the cpu op's order (row-major, the last letter fastest), so the float sums agree. The
/// simple kernel: no tiling (a MatMul-shaped einsum is better served by MatMulGpu; the importer's einsums are small).
/// </summary>
public sealed class EinsumGpu
{
    private readonly Action<Index1D, int, int, EinsumLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>> _einsum;
    private readonly int _gridThreads;

    public EinsumGpu(Accelerator accelerator)
    {
        _einsum = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, EinsumLayout, ArrayView<float>, ArrayView<float>, ArrayView<float>>(EinsumKernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>y = the einsum of a (and b when <see cref="EinsumLayout.Operands"/> is 2; else pass a again).</summary>
    public void Forward(in EinsumLayout l, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        if (y.Length != l.Outputs) throw new ArgumentException($"einsum: y has {y.Length} elements for {l.Outputs}");
        if (l.Count > int.MaxValue || a.Length > int.MaxValue || b.Length > int.MaxValue)
            throw new ArgumentException("einsum: index ranges above 2^31 are not supported");
        int n = (int)l.Outputs;
        if (n > 0) { int t = Math.Min(n, _gridThreads); _einsum(t, n, t, l, a, b, y); }
    }

    private static void EinsumKernel(Index1D index, int n, int stride, EinsumLayout l, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y)
    {
        int count = l.R0 * l.R1 * l.R2 * l.R3 * l.R4 * l.R5;
        for (int i = index; i < n; i += stride)
        {
            int r = i, oa = 0, ob = 0, k;
            k = r % l.D5; r /= l.D5; oa += k * l.A5; ob += k * l.B5;
            k = r % l.D4; r /= l.D4; oa += k * l.A4; ob += k * l.B4;
            k = r % l.D3; r /= l.D3; oa += k * l.A3; ob += k * l.B3;
            k = r % l.D2; r /= l.D2; oa += k * l.A2; ob += k * l.B2;
            k = r % l.D1; r /= l.D1; oa += k * l.A1; ob += k * l.B1;
            oa += r * l.A0; ob += r * l.B0;
            float acc = 0f;
            for (int q = 0; q < count; q++)
            {
                int s = q, pa = oa, pb = ob;
                k = s % l.R5; s /= l.R5; pa += k * l.E5; pb += k * l.F5;
                k = s % l.R4; s /= l.R4; pa += k * l.E4; pb += k * l.F4;
                k = s % l.R3; s /= l.R3; pa += k * l.E3; pb += k * l.F3;
                k = s % l.R2; s /= l.R2; pa += k * l.E2; pb += k * l.F2;
                k = s % l.R1; s /= l.R1; pa += k * l.E1; pb += k * l.F1;
                pa += s * l.E0; pb += s * l.F0;
                acc += l.Operands == 2 ? a[pa] * b[pb] : a[pa];
            }
            y[i] = acc;
        }
    }
}
