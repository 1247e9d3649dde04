using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using GpuAnomaly.Cli;
using Xunit;

namespace GpuAnomaly.Tests.Cli;

/// <summary>`predict --report`: the HTML page of a run, checked as text and in a headless browser.</summary>
public class PredictReportTests
{
    // A name a careless page would run as markup; '/' cannot be in a file name, so the tag is left open.
    private const string Hostile = "<script>alert(1)<b a=\"x\" & 'y'.png";

    /// <summary>A folder of a few bundled samples (both labels) plus one under a hostile name; the default model is fitted.</summary>
    private static string Inputs(string dir)
    {
        string inputs = Path.Combine(dir, "in");
        Directory.CreateDirectory(inputs);
        string samples = Path.Combine(AppContext.BaseDirectory, "samples");
        foreach (string name in new[] { "anomalous_bag_00.png", "anomalous_sneaker_04.png", "normal_trouser_00.png", "normal_trouser_01.png" })
            File.Copy(Path.Combine(samples, name), Path.Combine(inputs, name));
        File.Copy(Path.Combine(samples, "anomalous_coat_00.png"), Path.Combine(inputs, Hostile));
        return inputs;
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = GpuAnomalyCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Report_Default_SortedByScore_EscapesNames_ShowsThreshold()
    {
        string dir = Directory.CreateTempSubdirectory("report-").FullName;
        try
        {
            string outDir = Path.Combine(dir, "out");
            var (code, output, err) = Run("predict", Inputs(dir), "--device", "cpu", "--out", outDir, "--report");
            Assert.True(code == 0, err);
            Assert.Contains("\"heatmap\"", output);
            string report = Path.Combine(outDir, "report.html");
            Assert.True(File.Exists(report), err);
            Assert.Empty(Directory.GetFiles(outDir, "*.tmp")); // written through a temporary file, none left behind
            string html = File.ReadAllText(report);

            Assert.Equal(5, Regex.Matches(html, "<tr class=").Count);
            var raw = Regex.Matches(html, "class=\"num raw\">([^<]*)<").Select(m => float.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(5, raw.Count);
            Assert.Equal(raw.OrderByDescending(v => v), raw);

            Assert.DoesNotContain("<script>alert", html);
            Assert.DoesNotContain("<b a=", html);
            Assert.Contains("&lt;script&gt;alert(1)&lt;b a=&quot;x&quot; &amp; &#39;y&#39;.png", html);
            Assert.Matches("id=\"threshold\">raw score [0-9.]+ \\(pred_score 0.5\\)", html);
            Assert.Contains("memory_bank_default.safetensors (memory_bank)", html);
            Assert.Contains("id=\"device\">cpu<", html);
            var counts = Regex.Match(html, "5 scored: ([0-9]+) anomalous, ([0-9]+) normal");
            Assert.True(counts.Success, html);
            Assert.Equal(5, int.Parse(counts.Groups[1].Value) + int.Parse(counts.Groups[2].Value));
            // Panels are linked relative to the page, so the folder can move.
            Assert.Contains("src=\"normal_trouser_00_heatmap.png\"", html);
            Assert.DoesNotContain(outDir, Regex.Match(html, "src=\"[^\"]*\"").Value);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Report_ExplicitPath_OutsideOut_LinksBackIntoIt()
    {
        string dir = Directory.CreateTempSubdirectory("report-").FullName;
        try
        {
            string outDir = Path.Combine(dir, "out"), report = Path.Combine(dir, "pages", "run.html");
            var (code, _, err) = Run("predict", Inputs(dir), "--device", "cpu", "--out", outDir, $"--report={report}");
            Assert.True(code == 0, err);
            string html = File.ReadAllText(report);
            Assert.Contains("src=\"../out/normal_trouser_00_heatmap.png\"", html);
            Assert.False(File.Exists(Path.Combine(outDir, "report.html")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Report_NotAskedFor_NotWritten()
    {
        string dir = Directory.CreateTempSubdirectory("report-").FullName;
        try
        {
            string outDir = Path.Combine(dir, "out");
            var (code, _, err) = Run("predict", Inputs(dir), "--device", "cpu", "--out", outDir);
            Assert.True(code == 0, err);
            Assert.False(File.Exists(Path.Combine(outDir, "report.html")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [ChromiumFact]
    public void Report_InHeadlessChromium_OneRowPerImage_AllPanelsLoad_AfterTheFolderMoves()
    {
        Assert.True(ChromiumFactAttribute.Path is not null, "CI_REQUIRE_CHROMIUM=1 but no chromium at /usr/bin/chromium (apt-get install -y chromium)");
        string dir = Directory.CreateTempSubdirectory("report-").FullName;
        try
        {
            string outDir = Path.Combine(dir, "out");
            var (code, _, err) = Run("predict", Inputs(dir), "--device", "cpu", "--out", outDir, "--report");
            Assert.True(code == 0, err);
            string moved = Path.Combine(dir, "moved elsewhere");
            Directory.Move(outDir, moved);

            string dom = DumpDom(new Uri(Path.Combine(moved, "report.html")).AbsoluteUri, Path.Combine(dir, "profile"));
            Assert.Equal(5, Regex.Matches(dom, "<tr class=").Count);
            Assert.Contains("data-images-loaded=\"5/5\"", dom);
            Assert.DoesNotContain("<script>alert", dom); // the hostile name stayed text in the parsed page
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static string DumpDom(string url, string profile)
    {
        var psi = new ProcessStartInfo(ChromiumFactAttribute.Path!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // A profile of its own: tests run in parallel, and two chromiums on one profile wait on its lock.
        foreach (string a in new[] { "--headless", "--no-sandbox", "--disable-gpu", $"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", url })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("chromium --dump-dom did not finish in 90 s");
        }
        Assert.True(p.ExitCode == 0, $"chromium exit {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}
