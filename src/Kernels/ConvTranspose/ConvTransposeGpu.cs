using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAnomaly.Kernels.ConvTranspose;

/// <summary>
/// A transposed convolution over 3 spatial axes (1-D and 2-D ones are size-1 leading axes): x [N, Cin, D, H, W],
/// w [Cin, Cout / group, KD, KH, KW], y [N, Cout, OD, OH, OW].
/// </summary>
public struct ConvTransposeParams
{
    public int N, Cin, Cout, Group;
    public int D, H, W, OD, OH, OW, KD, KH, KW;
    public int SD, SH, SW, DD, DH, DW, PD, PH, PW;
    public int HasBias;

    public readonly long InputElements => (long)N * Cin * D * H * W;
    public readonly long OutputElements => (long)N * Cout * OD * OH * OW;
    public readonly long WeightElements => (long)Cin * (Cout / Group) * KD * KH * KW;
}

/// <summary>
/// ONNX ConvTranspose on an ILGPU accelerator: an implicitly grouped grid-stride kernel, one output element per thread
/// step, written as a gather (each output sums the input pixels whose scattered window covers it), so no atomics and
/// every element written once. The simple form: it documents the semantics the cpu op shares.
/// </summary>
public sealed class ConvTransposeGpu
{
    private static readonly ConditionalWeakTable<Accelerator, ConvTransposeGpu> Loaded = new();
    private readonly Action<Index1D, int, int, ConvTransposeParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _kernel;
    private readonly int _gridThreads;

    private ConvTransposeGpu(Accelerator accelerator)
    {
        _kernel = accelerator.LoadAutoGroupedStreamKernel<Index1D, int, int, ConvTransposeParams, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel);
        _gridThreads = Math.Max(1, accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor);
    }

    public static ConvTransposeGpu For(Accelerator accelerator) => Loaded.GetValue(accelerator, a => new ConvTransposeGpu(a));

    /// <summary>Queues the op on the default stream. <paramref name="bias"/> is read only when HasBias (pass any view otherwise).</summary>
    public void Forward(in ConvTransposeParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        if (p.Group < 1 || p.Cin % p.Group != 0 || p.Cout % p.Group != 0 || x.Length != p.InputElements || w.Length != p.WeightElements
            || y.Length != p.OutputElements || p.HasBias != 0 && bias.Length != p.Cout)
            throw new ArgumentException($"conv_transpose: views x {x.Length}, w {w.Length}, b {bias.Length}, y {y.Length} do not fit the parameters");
        int n = checked((int)p.OutputElements);
        if (n > 0) { int t = Math.Min(n, _gridThreads); _kernel(t, n, t, p, x, w, bias, y); }
    }

    private static void Kernel(Index1D index, int n, int stride, ConvTransposeParams p, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y)
    {
        int coutG = p.Cout / p.Group, cinG = p.Cin / p.Group;
        for (int i = index; i < n; i += stride)
        {
            int r = i;
            int ow = r % p.OW; r /= p.OW;
            int oh = r % p.OH; r /= p.OH;
            int od = r % p.OD; r /= p.OD;
            int oc = r % p.Cout;
            int b = r / p.Cout;
            int g = oc / coutG, ocl = oc % coutG;
            float acc = p.HasBias != 0 ? bias[oc] : 0f;
            for (int kd = 0; kd < p.KD; kd++)
            {
                int td = od + p.PD - kd * p.DD;
                if (td < 0 || td % p.SD != 0 || td / p.SD >= p.D) continue;
                int id = td / p.SD;
                for (int kh = 0; kh < p.KH; kh++)
                {
                    int th = oh + p.PH - kh * p.DH;
                    if (th < 0 || th % p.SH != 0 || th / p.SH >= p.H) continue;
                    int ih = th / p.SH;
                    for (int kw = 0; kw < p.KW; kw++)
                    {
                        int tw = ow + p.PW - kw * p.DW;
                        if (tw < 0 || tw % p.SW != 0 || tw / p.SW >= p.W) continue;
                        int iw = tw / p.SW;
                        for (int icl = 0; icl < cinG; icl++)
                        {
                            int ic = g * cinG + icl;
                            acc += x[(((b * p.Cin + ic) * p.D + id) * p.H + ih) * p.W + iw]
                                 * w[(((ic * coutG + ocl) * p.KD + kd) * p.KH + kh) * p.KW + kw];
                        }
                    }
                }
            }
            y[i] = acc;
        }
    }
}
