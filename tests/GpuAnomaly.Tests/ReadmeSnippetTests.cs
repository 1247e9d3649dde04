using System.Reflection;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using GpuAnomaly.Models;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace GpuAnomaly.Tests;

/// <summary>
/// Every ```csharp block of README.md is a whole program (top-level statements, its own using directives, the SDK's
/// implicit usings of a console project): compiled with Roslyn against the assemblies this test runs with, then run.
/// </summary>
public partial class ReadmeSnippetTests
{
    // A console project's implicit usings (Microsoft.NET.Sdk, ImplicitUsings enabled).
    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    // The SDK's default NoWarn for assembly unification (a referenced assembly built against an older framework).
    private static readonly string[] Ignored = ["CS1701", "CS1702"];

    [GeneratedRegex(@"^```csharp[ \t]*\r?\n(.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CsharpBlock();

    public static TheoryData<int> Blocks()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < CsharpBlocks().Count; i++) data.Add(i);
        return data;
    }

    [Fact]
    public void Readme_HasTheLibrarySnippets()
    {
        var blocks = CsharpBlocks();
        Assert.True(blocks.Count >= 2, $"{blocks.Count} csharp blocks in README.md");
        Assert.Contains(blocks, b => b.Code.Contains("BundledModels.DefaultPath"));
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void ReadmeSnippet_CompilesAndRuns(int index)
    {
        var (line, code) = CsharpBlocks()[index];
        var (compilation, problems) = Compile(code, $"ReadmeSnippet{index}");
        Assert.True(problems.Count == 0, $"README.md csharp block at line {line}:\n{string.Join("\n", problems)}");

        using var image = new MemoryStream();
        var emit = compilation.Emit(image);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
        image.Position = 0;
        // Its references (GpuAnomaly.*) resolve to the assemblies already loaded in the default context.
        var context = new AssemblyLoadContext($"readme-{index}", isCollectible: true);
        try
        {
            var entry = context.LoadFromStream(image).EntryPoint ?? throw new InvalidOperationException("no entry point");
            try { entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [Array.Empty<string>()]); }
            catch (TargetInvocationException e) when (e.InnerException is { } inner)
            {
                Assert.Fail($"README.md csharp block at line {line} threw {inner.GetType().Name}: {inner.Message}");
            }
        }
        finally { context.Unload(); }
    }

    /// <summary>The check must be able to fail: a snippet that names a missing member and mistypes a value does not compile.</summary>
    [Fact]
    public void BrokenSnippet_IsReported()
    {
        const string broken = """
            using GpuAnomaly.Models;

            string path = BundledModels.NoSuchModel;
            int size = "28";
            """;
        var (_, problems) = Compile(broken, "BrokenSnippet");
        Assert.Contains(problems, p => p.Id == "CS0117");
        Assert.Contains(problems, p => p.Id == "CS0029");
    }

    [Fact]
    public void RepoRoot_HoldsTheSolutionAndReadme()
    {
        string root = RepoRoot();
        Assert.True(File.Exists(Path.Combine(root, "GpuAnomaly.sln")));
        Assert.True(File.Exists(Path.Combine(root, "README.md")));
    }

    private static List<(int Line, string Code)> CsharpBlocks()
    {
        string markdown = File.ReadAllText(Path.Combine(RepoRoot(), "README.md"));
        return CsharpBlock().Matches(markdown)
            .Select(m => (Line: markdown.AsSpan(0, m.Index).Count('\n') + 1, Code: m.Groups[1].Value))
            .ToList();
    }

    /// <summary>Errors and warnings (an embedder may build with warnings as errors).</summary>
    private static (CSharpCompilation Compilation, List<Diagnostic> Problems) Compile(string code, string name)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var compilation = CSharpCompilation.Create(name,
            [CSharpSyntaxTree.ParseText(ImplicitUsings, parse, "ImplicitUsings.cs"), CSharpSyntaxTree.ParseText(code, parse, "Program.cs")],
            References(),
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        var problems = compilation.GetDiagnostics()
            .Where(d => d.Severity >= DiagnosticSeverity.Warning && !Ignored.Contains(d.Id))
            .ToList();
        return (compilation, problems);
    }

    private static readonly Lazy<List<MetadataReference>> LazyReferences = new(() =>
    {
        // Load the libraries the README uses, in case no other test has yet.
        _ = new[] { typeof(BundledModels).Assembly, typeof(GpuAnomaly.Engine.Device).Assembly, typeof(GpuAnomaly.Kernels.Activation).Assembly };
        var paths = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        string tpa = AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string ?? "";
        foreach (string path in tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            paths.TryAdd(Path.GetFileName(path), path);
        foreach (var assembly in AppDomain.CurrentDomain.GetAssemblies())
            if (!assembly.IsDynamic && assembly.Location.Length > 0)
                paths.TryAdd(Path.GetFileName(assembly.Location), assembly.Location);
        return paths.Values.Where(IsManagedAssembly).Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList();
    });

    private static List<MetadataReference> References() => LazyReferences.Value;

    private static bool IsManagedAssembly(string path)
    {
        try { AssemblyName.GetAssemblyName(path); return true; }
        catch (Exception e) when (e is BadImageFormatException or FileLoadException or FileNotFoundException) { return false; }
    }

    /// <summary>The folder with GpuAnomaly.sln, walking up from the test's output folder.</summary>
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GpuAnomaly.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no GpuAnomaly.sln in {AppContext.BaseDirectory} or any folder above it");
    }
}
