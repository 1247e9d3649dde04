using GpuAnomaly.Kernels.ConvTranspose;

namespace GpuAnomaly.Engine;

/// <summary>
/// ONNX ConvTranspose over 1 to 3 spatial axes: x [N, Cin, ...], w [Cin, Cout / group, k...], optional bias [Cout];
/// per axis stride, dilation, begin pad and the output size (the importer derives it from pads, output_padding,
/// output_shape and auto_pad). Output o along an axis gathers input i where o + padBegin = i * stride + k * dilation.
/// cpu and ILGPU (<see cref="ConvTransposeGpu"/>).
/// </summary>
public sealed class ConvTransposeOp(int[] strides, int[] dilations, int[] padBegin, int[] outputSize, int group) : HostKernelOp
{
    public IReadOnlyList<int> Strides { get; } = strides;
    public IReadOnlyList<int> Dilations { get; } = dilations;
    public IReadOnlyList<int> PadBegin { get; } = padBegin;
    public IReadOnlyList<int> OutputSize { get; } = outputSize;
    public int Group { get; } = group;
    public override string Kind => "conv_transpose";

    public override Shape InferShape(IReadOnlyList<Shape> inputs)
    {
        ExpectInputs(inputs, 2, 3);
        Shape x = inputs[0], w = inputs[1];
        int sp = OutputSize.Count;
        if (sp is < 1 or > 3 || x.Rank != sp + 2 || w.Rank != sp + 2 || Strides.Count != sp || Dilations.Count != sp || PadBegin.Count != sp)
            throw new ArgumentException($"a {sp}-D conv_transpose of {x} with weight {w}");
        if (Group < 1 || x[1] != w[0] || x[1] % Group != 0) throw new ArgumentException($"conv_transpose: weight {w} does not fit input {x} with group {Group}");
        if (Strides.Any(s => s < 1) || Dilations.Any(d => d < 1) || OutputSize.Any(o => o < 0)) throw new ArgumentException($"conv_transpose: strides, dilations or output size out of range ({this})");
        int cout = w[1] * Group;
        if (inputs.Count == 3 && (inputs[2].Rank != 1 || inputs[2][0] != cout)) throw new ArgumentException($"conv_transpose bias {inputs[2]} for {cout} channels");
        return new Shape([x[0], cout, .. OutputSize]);
    }

    // Every input pixel meets every tap of its group's output channels.
    public override double Flops(IReadOnlyList<Shape> inputs, Shape output) => 2.0 * inputs[0].Elements * (inputs[1].Elements / Math.Max(inputs[1][0], 1));

    private ConvTransposeParams Params(int[] xd, int[] wd, bool bias)
    {
        int sp = OutputSize.Count, lead = 3 - sp;
        int At(IReadOnlyList<int> v, int a, int dflt) => a < lead ? dflt : v[a - lead];
        int[] Sp(int[] d) => [.. Enumerable.Repeat(1, lead), .. d[2..]];
        var xs = Sp(xd);
        var ks = Sp(wd);
        return new ConvTransposeParams
        {
            N = xd[0], Cin = xd[1], Cout = wd[1] * Group, Group = Group,
            D = xs[0], H = xs[1], W = xs[2], KD = ks[0], KH = ks[1], KW = ks[2],
            OD = At(OutputSize, 0, 1), OH = At(OutputSize, 1, 1), OW = At(OutputSize, 2, 1),
            SD = At(Strides, 0, 1), SH = At(Strides, 1, 1), SW = At(Strides, 2, 1),
            DD = At(Dilations, 0, 1), DH = At(Dilations, 1, 1), DW = At(Dilations, 2, 1),
            PD = At(PadBegin, 0, 0), PH = At(PadBegin, 1, 0), PW = At(PadBegin, 2, 0),
            HasBias = bias ? 1 : 0,
        };
    }

    protected override void Compute<T>(InputSpan<T> xs, int[][] dims, Span<T> y, int[] yDims)
    {
        var p = Params(dims[0], dims[1], dims.Length == 3);
        ReadOnlySpan<T> x = xs(0), w = xs(1), bias = dims.Length == 3 ? xs(2) : default;
        int coutG = p.Cout / p.Group, cinG = p.Cin / p.Group;
        // The ILGPU kernel's gather, on the host: per output element, the taps whose input pixel lands on it.
        for (int b = 0, i = 0; b < p.N; b++)
            for (int oc = 0; oc < p.Cout; oc++)
            {
                int g = oc / coutG, ocl = oc % coutG;
                for (int od = 0; od < p.OD; od++)
                    for (int oh = 0; oh < p.OH; oh++)
                        for (int ow = 0; ow < p.OW; ow++, i++)
                        {
                            T acc = p.HasBias != 0 ? bias[oc] : T.Zero;
                            for (int kd = 0; kd < p.KD; kd++)
                            {
                                int td = od + p.PD - kd * p.DD;
                                if (td < 0 || td % p.SD != 0 || td / p.SD >= p.D) continue;
                                for (int kh = 0; kh < p.KH; kh++)
                                {
                                    int th = oh + p.PH - kh * p.DH;
                                    if (th < 0 || th % p.SH != 0 || th / p.SH >= p.H) continue;
                                    for (int kw = 0; kw < p.KW; kw++)
                                    {
                                        int tw = ow + p.PW - kw * p.DW;
                                        if (tw < 0 || tw % p.SW != 0 || tw / p.SW >= p.W) continue;
                                        int pix = (td / p.SD * p.H + th / p.SH) * p.W + tw / p.SW, tap = (kd * p.KH + kh) * p.KW + kw;
                                        for (int icl = 0; icl < cinG; icl++)
                                        {
                                            int ic = g * cinG + icl;
                                            acc += x[(b * p.Cin + ic) * p.D * p.H * p.W + pix] * w[(ic * coutG + ocl) * p.KD * p.KH * p.KW + tap];
                                        }
                                    }
                                }
                            }
                            y[i] = acc;
                        }
            }
    }

    protected override bool RunIlgpu(IlgpuDevice device, IReadOnlyList<Tensor> inputs, Tensor output)
    {
        bool bias = inputs.Count == 3;
        var p = Params(inputs[0].Shape.Dims.ToArray(), inputs[1].Shape.Dims.ToArray(), bias);
        ConvTransposeGpu.For(device.Accelerator).Forward(p, inputs[0].View<float>(), inputs[1].View<float>(),
            bias ? inputs[2].View<float>() : inputs[1].View<float>(), output.View<float>());
        return true;
    }

    public override string ToString() =>
        $"{Kind}(s=[{string.Join(",", Strides)}] d=[{string.Join(",", Dilations)}] pad=[{string.Join(",", PadBegin)}] out=[{string.Join(",", OutputSize)}] g={Group})";
}
