using System.Reflection;
using ILGPU;
using ILGPU.Backends.PTX;
using ILGPU.IR;
using ILGPU.IR.Intrinsics;
using ILGPU.IR.Values;

namespace GpuAnomaly.Kernels.Ternary;

/// <summary>
/// <see cref="TernaryKernelMath.Dp4a"/> as a PTX intrinsic: the PTX backend emits one
/// dp4a.u32.s32 into registers for each call, where the method's C# body (the same sum) runs
/// everywhere else. Why not CudaAsm.Emit: ILGPU 1.5.3 passes an inline-asm output through a
/// local variable (st.local after every asm statement), and ptxas forwards the reload but keeps
/// the store, so each dp4a cost a local-memory store in the A8 kernels' hot loops (STL in the
/// SASS, a 128-256 byte stack frame per thread; tests/Ptx/PtxasTests now fails on that).
/// A context that compiles the A8 kernels for CUDA must be built with <see cref="EnableGpuAnomalyKernels"/>
/// (IlgpuDevice's are): without it ILGPU refuses them (NotSupportedIntrinsicException, which
/// <see cref="TernaryLinearGpu"/> turns into an error that says so). The CPU emulator runs the C# body either way.
/// </summary>
public static class Dp4aIntrinsic
{
    /// <summary>Registers the project's PTX intrinsics with a context under construction.</summary>
    public static Context.Builder EnableGpuAnomalyKernels(this Context.Builder builder)
    {
        var source = typeof(TernaryKernelMath).GetMethod(nameof(TernaryKernelMath.Dp4a), BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            ?? throw new MissingMethodException(nameof(TernaryKernelMath), nameof(TernaryKernelMath.Dp4a));
        var generator = typeof(Dp4aIntrinsic).GetMethod(nameof(GeneratePtx), BindingFlags.Static | BindingFlags.NonPublic)
            ?? throw new MissingMethodException(nameof(Dp4aIntrinsic), nameof(GeneratePtx));
        builder.GetIntrinsicManager().RegisterMethod(source, new PTXIntrinsic(generator, IntrinsicImplementationMode.GenerateCode));
        return builder;
    }

    /// <summary>dp4a.u32.s32 d, codes, q, acc: the four unsigned bytes of codes times the four signed bytes of q, plus acc.</summary>
    private static void GeneratePtx(PTXBackend backend, PTXCodeGenerator codeGenerator, Value value)
    {
        var call = (MethodCall)value;
        var codes = codeGenerator.LoadPrimitive(call[0]);
        var q = codeGenerator.LoadPrimitive(call[1]);
        var acc = codeGenerator.LoadPrimitive(call[2]);
        var target = codeGenerator.AllocateHardware(value);
        using var command = codeGenerator.BeginCommand("dp4a.u32.s32");
        command.AppendArgument(target);
        command.AppendArgument(codes);
        command.AppendArgument(q);
        command.AppendArgument(acc);
    }
}
