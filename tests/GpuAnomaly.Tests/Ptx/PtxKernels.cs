using System.Reflection;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Ternary;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GpuAnomaly.Tests.Ptx;

/// <summary>
/// The engine's ILGPU kernels and ILGPU's own PTX backend, which compiles them for sm_80 (the newest
/// target ILGPU 1.5.3 emits) with no GPU or driver.
/// </summary>
public sealed class PtxKernels : IDisposable
{
    private readonly Context _context = Context.Create(b => b.EnableAlgorithms().EnableGpuAnomalyKernels());
    private readonly PTXBackend _backend;

    public PtxKernels()
    {
        _backend = new PTXBackend(_context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_70, nvvmAPI: null!);
    }

    public void Dispose()
    {
        _backend.Dispose();
        _context.Dispose();
    }

    /// <summary>
    /// Kernel entry points: static void methods of the kernel assembly with an ArrayView parameter.
    /// Implicitly grouped kernels take an Index1D/2D/3D first; the others are explicitly grouped.
    /// (A device function that matches is compiled as an entry point too; that is harmless.)
    /// </summary>
    public static IEnumerable<MethodInfo> Methods() =>
        typeof(Conv2dParams).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.ReturnType == typeof(void) && !m.IsGenericMethodDefinition && !m.IsSpecialName
                && m.GetParameters().Any(p => p.ParameterType.IsGenericType && p.ParameterType.GetGenericTypeDefinition() == typeof(ArrayView<>))
                && m.GetParameters().All(p => p.ParameterType.IsValueType))
            .OrderBy(Name, StringComparer.Ordinal);

    public static string Name(MethodInfo m) => $"{m.DeclaringType!.FullName}.{m.Name}({string.Join(",", m.GetParameters().Select(p => p.ParameterType.Name))})";

    public static MethodInfo Named(string name) => Methods().Single(k => Name(k) == name);

    /// <summary>Every kernel's name, as theory data.</summary>
    public static Xunit.TheoryData<string> Names()
    {
        var data = new Xunit.TheoryData<string>();
        foreach (var m in Methods()) data.Add(Name(m));
        return data;
    }

    private static bool IsImplicit(MethodInfo m)
    {
        var first = m.GetParameters()[0].ParameterType;
        return first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D);
    }

    public string Compile(MethodInfo m)
    {
        var entry = IsImplicit(m)
            ? EntryPointDescription.FromImplicitlyGroupedKernel(m)
            : EntryPointDescription.FromExplicitlyGroupedKernel(m);
        var compiled = (PTXCompiledKernel)_backend.Compile(entry, KernelSpecialization.Empty);
        return compiled.PTXAssembly;
    }
}
