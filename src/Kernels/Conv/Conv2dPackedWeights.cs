using System.Runtime.InteropServices;
using GpuAnomaly.Kernels.Cpu;

namespace GpuAnomaly.Kernels.Conv;

/// <summary>
/// Conv2d weights in the layout <see cref="Conv2dCpu"/> computes from (the SGEMM's packed A operand per group,
/// or a plain copy for depthwise convolutions), made once by <see cref="Conv2dCpu.PackWeights"/> and reused
/// by every <see cref="Conv2dCpu.Forward(in Conv2dParams, ReadOnlySpan{float}, Conv2dPackedWeights, ReadOnlySpan{float}, Span{float})"/>
/// call: weights of a graph are constants, so packing them per call is wasted work. Owns native, 64-byte
/// aligned memory, freed by Dispose (or the finalizer). It holds a copy: later changes to the source weights
/// are not seen.
/// </summary>
public sealed unsafe class Conv2dPackedWeights : IDisposable
{
    private float* _data;

    internal Conv2dPackedWeights(in Conv2dParams p, bool use512, bool tapMajor, bool direct, bool winograd, long floats)
    {
        Winograd = winograd;
        TapMajor = tapMajor;
        Direct = direct;
        COut = p.COut; CInPerGroup = p.CInPerGroup; KH = p.KH; KW = p.KW; Groups = p.Groups;
        Use512 = use512;
        Floats = floats;
        _data = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(floats, 1) * sizeof(float), 64);
        if (_data == null) throw new OutOfMemoryException($"conv2d: {floats} floats of packed weights");
        GC.AddMemoryPressure(Math.Max(floats, 1) * sizeof(float));
    }

    /// <summary>The weight shape [COut, CIn/Groups, KH, KW] and groups these weights were packed for.</summary>
    public int COut { get; }
    public int CInPerGroup { get; }
    public int KH { get; }
    public int KW { get; }
    public int Groups { get; }
    /// <summary>The micro-kernel the layout is for (AVX-512 8-row or AVX2 6-row panels).</summary>
    internal bool Use512 { get; }
    internal long Floats { get; }
    /// <summary>K ordered (tap, channel) for the padded-input path, else (channel, tap); it depends on stride and size.</summary>
    internal bool TapMajor { get; }
    /// <summary>Packed for the direct path (also for one input channel, which otherwise keeps a plain copy).</summary>
    internal bool Direct { get; }
    /// <summary>Transformed and packed for the Winograd path (one A per transformed tap).</summary>
    internal bool Winograd { get; }
    public bool IsDisposed => _data == null;

    internal float* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_data == null, this);
            return _data;
        }
    }

    /// <summary>Whether these weights serve a convolution with parameters <paramref name="p"/> on this machine now.</summary>
    public bool Matches(in Conv2dParams p) =>
        p.COut == COut && p.CInPerGroup == CInPerGroup && p.KH == KH && p.KW == KW && p.Groups == Groups
        && Direct == Conv2dCpu.UsesDirect(p) && Winograd == Conv2dCpu.UsesWinograd(p)
        && ((CInPerGroup == 1 && !Direct) || (Use512 == Sgemm.Use512 && TapMajor == Conv2dCpu.UsesPaddedInput(p)));

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_data == null) return;
        NativeMemory.AlignedFree(_data);
        GC.RemoveMemoryPressure(Math.Max(Floats, 1) * sizeof(float));
        _data = null;
    }

    ~Conv2dPackedWeights() => Free();

    public override string ToString() => $"Conv2dPackedWeights([{COut}, {CInPerGroup}, {KH}, {KW}], groups {Groups})";
}
