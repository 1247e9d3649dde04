using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuAnomaly.Kernels.Cpu;

/// <summary>
/// The register-blocked inner kernels of <see cref="Sgemm"/>: C[MR, NR] (+)= A-panel[kc, MR] * B-panel[kc, NR],
/// all accumulators held in vector registers for the whole kc loop. A is broadcast one element at a time,
/// B is loaded NR wide. The epilogue (bias per row on the first K block, activation on the last) is fused
/// so the output tile is touched once per K block.
/// </summary>
internal static unsafe class SgemmMicroKernels
{
    /// <summary>AVX-512: 8 rows x 32 columns = 16 zmm accumulators (+2 B, +1 broadcast: 19 of 32 registers).</summary>
    public const int Mr512 = 8, Nr512 = 32;
    /// <summary>AVX2: 6 rows x 16 columns = 12 ymm accumulators (+2 B, +1 broadcast: 15 of 16 registers).</summary>
    public const int Mr256 = 6, Nr256 = 16;

    /// <param name="ldb">floats from one B row to the next: NR for a packed panel, the row stride when B is read in place.</param>
    /// <param name="load">add to the tile already in C (a later K block); otherwise start from the bias (or 0).</param>
    /// <param name="bias">MR row biases, or null.</param>
    /// <param name="act">the activation to apply before storing (only on the last K block), else None.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel8x32(int kc, float* a, float* b, int ldb, float* c, int ldc, bool load, float* bias, Activation act, float slope)
    {
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (load)
        {
            float* r = c;
            c00 = Vector512.Load(r); c01 = Vector512.Load(r + 16); r += ldc;
            c10 = Vector512.Load(r); c11 = Vector512.Load(r + 16); r += ldc;
            c20 = Vector512.Load(r); c21 = Vector512.Load(r + 16); r += ldc;
            c30 = Vector512.Load(r); c31 = Vector512.Load(r + 16); r += ldc;
            c40 = Vector512.Load(r); c41 = Vector512.Load(r + 16); r += ldc;
            c50 = Vector512.Load(r); c51 = Vector512.Load(r + 16); r += ldc;
            c60 = Vector512.Load(r); c61 = Vector512.Load(r + 16); r += ldc;
            c70 = Vector512.Load(r); c71 = Vector512.Load(r + 16);
        }
        else if (bias != null)
        {
            c00 = c01 = Vector512.Create(bias[0]);
            c10 = c11 = Vector512.Create(bias[1]);
            c20 = c21 = Vector512.Create(bias[2]);
            c30 = c31 = Vector512.Create(bias[3]);
            c40 = c41 = Vector512.Create(bias[4]);
            c50 = c51 = Vector512.Create(bias[5]);
            c60 = c61 = Vector512.Create(bias[6]);
            c70 = c71 = Vector512.Create(bias[7]);
        }
        else
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector512<float>.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = Vector512<float>.Zero;
        }

        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            Vector512<float> av;
            av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            a += Mr512;
            b += ldb;
        }

        float* o = c;
        Store(Act(c00, act, slope), o); Store(Act(c01, act, slope), o + 16); o += ldc;
        Store(Act(c10, act, slope), o); Store(Act(c11, act, slope), o + 16); o += ldc;
        Store(Act(c20, act, slope), o); Store(Act(c21, act, slope), o + 16); o += ldc;
        Store(Act(c30, act, slope), o); Store(Act(c31, act, slope), o + 16); o += ldc;
        Store(Act(c40, act, slope), o); Store(Act(c41, act, slope), o + 16); o += ldc;
        Store(Act(c50, act, slope), o); Store(Act(c51, act, slope), o + 16); o += ldc;
        Store(Act(c60, act, slope), o); Store(Act(c61, act, slope), o + 16); o += ldc;
        Store(Act(c70, act, slope), o); Store(Act(c71, act, slope), o + 16);
    }

    /// <summary>
    /// <see cref="Kernel8x32"/> with B row p read at rows[p] from each 16-column half's own place (<see cref="IHalfRows"/>)
    /// instead of b + p * ldb: a stride-1 convolution's taps read in place from its input (row p = input channel and
    /// tap, shifted by the tap's offset), so no im2col panel is packed (<see cref="Conv.Conv2dCpu"/>'s direct path).
    /// A half whose pixels wrap into the next output row reads from two places and selects per lane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel8x32Rows<T0, T1>(int kc, float* a, float* b, int* rows, T0 half0, T1 half1, float* c, int ldc,
        bool load, float* bias, Activation act, float slope)
        where T0 : struct, IHalfRows where T1 : struct, IHalfRows
    {
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (load)
        {
            float* r = c;
            c00 = Vector512.Load(r); c01 = Vector512.Load(r + 16); r += ldc;
            c10 = Vector512.Load(r); c11 = Vector512.Load(r + 16); r += ldc;
            c20 = Vector512.Load(r); c21 = Vector512.Load(r + 16); r += ldc;
            c30 = Vector512.Load(r); c31 = Vector512.Load(r + 16); r += ldc;
            c40 = Vector512.Load(r); c41 = Vector512.Load(r + 16); r += ldc;
            c50 = Vector512.Load(r); c51 = Vector512.Load(r + 16); r += ldc;
            c60 = Vector512.Load(r); c61 = Vector512.Load(r + 16); r += ldc;
            c70 = Vector512.Load(r); c71 = Vector512.Load(r + 16);
        }
        else if (bias != null)
        {
            c00 = c01 = Vector512.Create(bias[0]);
            c10 = c11 = Vector512.Create(bias[1]);
            c20 = c21 = Vector512.Create(bias[2]);
            c30 = c31 = Vector512.Create(bias[3]);
            c40 = c41 = Vector512.Create(bias[4]);
            c50 = c51 = Vector512.Create(bias[5]);
            c60 = c61 = Vector512.Create(bias[6]);
            c70 = c71 = Vector512.Create(bias[7]);
        }
        else
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector512<float>.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = Vector512<float>.Zero;
        }

        for (int p = 0; p < kc; p++)
        {
            float* bp = b + rows[p];
            var b0 = half0.Load(bp);
            var b1 = half1.Load(bp);
            Vector512<float> av;
            av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            a += Mr512;
        }

        float* o = c;
        Store(Act(c00, act, slope), o); Store(Act(c01, act, slope), o + 16); o += ldc;
        Store(Act(c10, act, slope), o); Store(Act(c11, act, slope), o + 16); o += ldc;
        Store(Act(c20, act, slope), o); Store(Act(c21, act, slope), o + 16); o += ldc;
        Store(Act(c30, act, slope), o); Store(Act(c31, act, slope), o + 16); o += ldc;
        Store(Act(c40, act, slope), o); Store(Act(c41, act, slope), o + 16); o += ldc;
        Store(Act(c50, act, slope), o); Store(Act(c51, act, slope), o + 16); o += ldc;
        Store(Act(c60, act, slope), o); Store(Act(c61, act, slope), o + 16); o += ldc;
        Store(Act(c70, act, slope), o); Store(Act(c71, act, slope), o + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x16(int kc, float* a, float* b, int ldb, float* c, int ldc, bool load, float* bias, Activation act, float slope)
    {
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (load)
        {
            float* r = c;
            c00 = Vector256.Load(r); c01 = Vector256.Load(r + 8); r += ldc;
            c10 = Vector256.Load(r); c11 = Vector256.Load(r + 8); r += ldc;
            c20 = Vector256.Load(r); c21 = Vector256.Load(r + 8); r += ldc;
            c30 = Vector256.Load(r); c31 = Vector256.Load(r + 8); r += ldc;
            c40 = Vector256.Load(r); c41 = Vector256.Load(r + 8); r += ldc;
            c50 = Vector256.Load(r); c51 = Vector256.Load(r + 8);
        }
        else if (bias != null)
        {
            c00 = c01 = Vector256.Create(bias[0]);
            c10 = c11 = Vector256.Create(bias[1]);
            c20 = c21 = Vector256.Create(bias[2]);
            c30 = c31 = Vector256.Create(bias[3]);
            c40 = c41 = Vector256.Create(bias[4]);
            c50 = c51 = Vector256.Create(bias[5]);
        }
        else
        {
            c00 = c01 = c10 = c11 = c20 = c21 = Vector256<float>.Zero;
            c30 = c31 = c40 = c41 = c50 = c51 = Vector256<float>.Zero;
        }

        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            Vector256<float> av;
            av = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            av = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
            av = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
            av = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
            av = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
            av = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
            a += Mr256;
            b += ldb;
        }

        float* o = c;
        Store(Act(c00, act, slope), o); Store(Act(c01, act, slope), o + 8); o += ldc;
        Store(Act(c10, act, slope), o); Store(Act(c11, act, slope), o + 8); o += ldc;
        Store(Act(c20, act, slope), o); Store(Act(c21, act, slope), o + 8); o += ldc;
        Store(Act(c30, act, slope), o); Store(Act(c31, act, slope), o + 8); o += ldc;
        Store(Act(c40, act, slope), o); Store(Act(c41, act, slope), o + 8); o += ldc;
        Store(Act(c50, act, slope), o); Store(Act(c51, act, slope), o + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> v, float* p) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector256<float> v, float* p) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Act(Vector512<float> v, Activation act, float slope) => act switch
    {
        Activation.Relu => Vector512.Max(v, Vector512<float>.Zero),
        Activation.LeakyRelu => Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(v, Vector512<float>.Zero), v, v * slope),
        _ => v,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Act(Vector256<float> v, Activation act, float slope) => act switch
    {
        Activation.Relu => Vector256.Max(v, Vector256<float>.Zero),
        Activation.LeakyRelu => Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(v, Vector256<float>.Zero), v, v * slope),
        _ => v,
    };
}

/// <summary>Where one 16-column half of <see cref="SgemmMicroKernels.Kernel8x32Rows"/>'s tile reads a B row.</summary>
internal unsafe interface IHalfRows
{
    Vector512<float> Load(float* row);
}

/// <summary>16 consecutive floats at a fixed offset from the row.</summary>
internal readonly unsafe struct StraightHalf(int offset) : IHalfRows
{
    private readonly int _offset = offset;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Load(float* row) => Vector512.Load(row + _offset);
}

/// <summary>Lanes where take is set from first + lane, the others from second + lane (pixels of the next output row).</summary>
internal readonly unsafe struct WrappedHalf(int first, int second, Vector512<float> take) : IHalfRows
{
    private readonly Vector512<float> _take = take;
    private readonly int _first = first, _second = second;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Load(float* row) => Vector512.ConditionalSelect(_take, Vector512.Load(row + _first), Vector512.Load(row + _second));
}
