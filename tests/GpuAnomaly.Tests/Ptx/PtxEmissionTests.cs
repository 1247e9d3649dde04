using System.Reflection;
using System.Text.RegularExpressions;
using GpuAnomaly.Kernels.Ternary;
using Xunit;

namespace GpuAnomaly.Tests.Ptx;

/// <summary>
/// Compiles every ILGPU kernel of the engine to PTX (sm_80, the newest target ILGPU 1.5.3 emits) with
/// ILGPU's own PTX backend, which needs no GPU or driver. CI has no GPU, so this is what catches a
/// kernel the CUDA backend cannot compile (an unsupported intrinsic, a static shared buffer over
/// 48 KB) before it reaches a lent device; and it checks that the ternary A8 kernels really emit dp4a
/// (<see cref="Dp4aIntrinsic"/>) into registers.
/// Whether ptxas accepts the PTX is <see cref="PtxasTests"/>' job.
/// </summary>
public sealed class PtxEmissionTests : IDisposable
{
    private const int StaticSharedLimit = 48 * 1024;
    private readonly PtxKernels _ptx = new();

    public void Dispose() => _ptx.Dispose();

    public static TheoryData<string> Kernels() => PtxKernels.Names();

    private static IEnumerable<MethodInfo> KernelMethods() => PtxKernels.Methods();

    private string Compile(MethodInfo m) => _ptx.Compile(m);

    [Fact]
    public void The_scan_finds_the_kernel_families()
    {
        var names = KernelMethods().Select(m => m.DeclaringType!.Name).Distinct().ToList();
        // One per family at least; a scan that silently found nothing would make the theory vacuous.
        foreach (var family in new[] { "Conv2dImplicitGemmKernel", "Conv2dDirectKernel", "TernaryGemvKernel", "TernaryGemmKernel",
                     "TernaryQuantizeKernel", "TernaryConv2dKernel", "WindowAttentionGpu", "VimGpu", "LinearGpu", "PeakKernels",
                     "KnnGpu", "HybridMemoryGpu" })
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
        var m = PtxKernels.Named(name);
        string ptx = Compile(m);
        Assert.Contains(".entry", ptx);
        Assert.Contains(".target sm_80", ptx);
        long shared = SharedBytes(ptx);
        Assert.True(shared <= StaticSharedLimit, $"{name}: {shared} bytes of static shared memory (limit {StaticSharedLimit})");
    }

    [Theory]
    [InlineData(typeof(TernaryGemvKernel), TernaryGemvKernel.Rows * 4)]
    [InlineData(typeof(TernaryGemmKernel), 16 * 4)]
    public void Ternary_a8_kernels_emit_dp4a_in_registers(Type kernel, int perStep)
    {
        var a8 = kernel.GetMethod("A8", BindingFlags.Static | BindingFlags.Public)!;
        string ptx = Compile(a8);
        var dp4a = Regex.Matches(ptx, @"^\s*dp4a\.u32\.s32\s+%r\d+,\s*%r\d+,\s*%r\d+,\s*%r\d+;", RegexOptions.Multiline);
        // DotWord is 4 dp4a per packed word; the GEMV does Rows words per step, the GEMM 16 (4 rows x 4 tokens).
        Assert.True(dp4a.Count == perStep, $"{kernel.Name}.A8: {dp4a.Count} dp4a instructions, expected {perStep}\n{ptx}");
        // Dp4aIntrinsic writes the result straight into a register. CudaAsm.Emit, used before, went through a local
        // variable per call site: 32 .local depots and an st.local after each dp4a, which ptxas kept (STL in the SASS).
        Assert.DoesNotContain(".local", ptx);
        Assert.DoesNotContain("call", ptx);

        var a32 = kernel.GetMethod("A32", BindingFlags.Static | BindingFlags.Public)!;
        Assert.DoesNotContain("dp4a", Compile(a32));
    }
}
