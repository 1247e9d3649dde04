using System.Reflection;
using System.Text.RegularExpressions;
using GpuAnomaly.Kernels.Conv;
using GpuAnomaly.Kernels.Ternary;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace GpuAnomaly.Tests.Ptx;

/// <summary>
/// Compiles every ILGPU kernel of the engine to PTX (sm_80, the newest target ILGPU 1.5.3 emits) with
/// ILGPU's own PTX backend, which needs no GPU or driver. CI has no GPU, so this is what catches a
/// kernel the CUDA backend cannot compile (an unsupported intrinsic, a static shared buffer over
/// 48 KB, a malformed inline-PTX template) before it reaches a lent device; and it checks that the
/// ternary A8 kernels really emit dp4a, with <see cref="CudaAsm.IsSupported"/> resolved at compile time.
/// It does not run ptxas: the PTX text is what is checked.
/// </summary>
public sealed class PtxEmissionTests : IDisposable
{
    private const int StaticSharedLimit = 48 * 1024;
    private readonly Context _context = Context.Create(b => b.EnableAlgorithms());
    private readonly PTXBackend _backend;

    public PtxEmissionTests()
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
    public static TheoryData<string> Kernels()
    {
        var data = new TheoryData<string>();
        foreach (var m in KernelMethods()) data.Add(Name(m));
        return data;
    }

    private static IEnumerable<MethodInfo> KernelMethods() =>
        typeof(Conv2dParams).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(m => m.ReturnType == typeof(void) && !m.IsGenericMethodDefinition && !m.IsSpecialName
                && m.GetParameters().Any(p => p.ParameterType.IsGenericType && p.ParameterType.GetGenericTypeDefinition() == typeof(ArrayView<>))
                && m.GetParameters().All(p => p.ParameterType.IsValueType))
            .OrderBy(Name, StringComparer.Ordinal);

    private static string Name(MethodInfo m) => $"{m.DeclaringType!.FullName}.{m.Name}({string.Join(",", m.GetParameters().Select(p => p.ParameterType.Name))})";

    private static bool IsImplicit(MethodInfo m)
    {
        var first = m.GetParameters()[0].ParameterType;
        return first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D);
    }

    private string Compile(MethodInfo m)
    {
        var entry = IsImplicit(m)
            ? EntryPointDescription.FromImplicitlyGroupedKernel(m)
            : EntryPointDescription.FromExplicitlyGroupedKernel(m);
        var compiled = (PTXCompiledKernel)_backend.Compile(entry, KernelSpecialization.Empty);
        return compiled.PTXAssembly;
    }

    [Fact]
    public void The_scan_finds_the_kernel_families()
    {
        var names = KernelMethods().Select(m => m.DeclaringType!.Name).Distinct().ToList();
        // One per family at least; a scan that silently found nothing would make the theory vacuous.
        foreach (var family in new[] { "Conv2dImplicitGemmKernel", "Conv2dDirectKernel", "TernaryGemvKernel", "TernaryGemmKernel",
                     "TernaryQuantizeKernel", "TernaryConv2dKernel", "WindowAttentionGpu", "VimGpu", "LinearGpu", "PeakKernels" })
            Assert.Contains(family, names);
        // 38 entry points (kernels and device functions) as of writing; a broken scan would find far fewer.
        Assert.True(KernelMethods().Count() >= 35, $"only {KernelMethods().Count()} kernels found");
    }

    [Fact]
    public void The_shared_memory_pattern_matches_ilgpus_declarations()
    {
        // Guard for the limit check below: a kernel known to stage tiles in shared memory must show some,
        // else a change in ILGPU's PTX syntax would make that check pass vacuously.
        var attention = KernelMethods().Single(m => m.DeclaringType!.Name == "WindowAttentionGpu" && m.Name == "Kernel");
        Assert.True(SharedBytes(Compile(attention)) > 0);
    }

    private static long SharedBytes(string ptx) =>
        Regex.Matches(ptx, @"\.shared\s+\.align\s+\d+\s+\.b8\s+\S+\[(\d+)\]").Sum(x => long.Parse(x.Groups[1].Value));

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Compiles_to_ptx_within_the_static_shared_memory_limit(string name)
    {
        var m = KernelMethods().Single(k => Name(k) == name);
        string ptx = Compile(m);
        Assert.Contains(".entry", ptx);
        Assert.Contains(".target sm_80", ptx);
        long shared = SharedBytes(ptx);
        Assert.True(shared <= StaticSharedLimit, $"{name}: {shared} bytes of static shared memory (limit {StaticSharedLimit})");
    }

    [Theory]
    [InlineData(typeof(TernaryGemvKernel))]
    [InlineData(typeof(TernaryGemmKernel))]
    public void Ternary_a8_kernels_emit_dp4a_behind_a_compile_time_flag(Type kernel)
    {
        var a8 = kernel.GetMethod("A8", BindingFlags.Static | BindingFlags.Public)!;
        string ptx = Compile(a8);
        var dp4a = Regex.Matches(ptx, @"^\s*dp4a\.u32\.s32\s+%r\d+,\s*%r\d+,\s*%r\d+,\s*%r\d+;", RegexOptions.Multiline);
        // DotWord issues 4 dp4a per packed word; the kernels unroll over words by hand.
        Assert.True(dp4a.Count >= 4, $"{kernel.Name}.A8: {dp4a.Count} dp4a instructions\n{ptx}");
        // CudaAsm.IsSupported (Accelerator.CurrentType == Cuda) is resolved when the PTX backend specializes
        // the kernel, after ILGPU's constant folding: the portable path stays in the PTX behind a branch on
        // a comparison of two immediates (setp.ne.s32 %p, 1, 1: "not CUDA", always false), which ptxas
        // folds away. The immediates prove the flag was resolved at compile time, not read at run time.
        Assert.Matches(@"setp\.ne\.s32\s+%p\d+,\s*1,\s*1;", ptx);

        var a32 = kernel.GetMethod("A32", BindingFlags.Static | BindingFlags.Public)!;
        Assert.DoesNotContain("dp4a", Compile(a32));
    }
}
