using System.Globalization;
using System.Net;
using System.Text;

namespace GpuAnomaly.Cli.Commands;

/// <summary>One scored image of a `predict` run, as the report shows it.</summary>
internal sealed record ReportRow(string Path, string Panel, float RawScore, float? PredScore, string? Label);

/// <summary>
/// `predict --report`: one HTML page of a run, rows most anomalous first. Panels are linked by paths relative to the
/// page, so the out folder can be moved or zipped whole; every name that came from the disk is escaped, since a
/// file may be called "&lt;script&gt;.png". A script sets body[data-images-loaded] to "loaded/total" once the
/// page's load event fires (all images settled), so a headless browser can check that the links resolve.
/// </summary>
internal static class PredictReport
{
    public static void Write(string path, IReadOnlyList<ReportRow> rows, string model, string device, float? threshold)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        var html = Html(rows, dir, model, device, threshold);
        // Atomic like the PNGs: a viewer opening the page mid-write never sees half a table.
        string tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllText(tmp, html, new UTF8Encoding(false));
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    public static string Html(IReadOnlyList<ReportRow> rows, string reportDir, string model, string device, float? threshold)
    {
        // Raw scores order the rows: normalization is monotonic, and unlike pred_score it does not clamp ties at 0 and 1.
        var sorted = rows.OrderByDescending(r => float.IsNaN(r.RawScore) ? float.NegativeInfinity : r.RawScore).ToList();
        int anomalous = rows.Count(r => r.Label == "anomalous"), normal = rows.Count(r => r.Label == "normal");
        static string E(string s) => WebUtility.HtmlEncode(s);
        static string F(float v) => v.ToString("0.####", CultureInfo.InvariantCulture);

        var b = new StringBuilder();
        b.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gpuanomaly predict report</title>\n<style>")
         .Append("body{font-family:sans-serif;margin:1.5em;background:#fafafa}table{border-collapse:collapse}")
         .Append("td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:middle}")
         .Append("td.num{text-align:right;font-variant-numeric:tabular-nums}tr.anomalous td.label{color:#b00;font-weight:bold}")
         .Append("img{height:112px;image-rendering:pixelated}</style></head>\n<body>\n<h1>gpuanomaly predict</h1>\n<dl>\n")
         .Append($"<dt>Model</dt><dd id=\"model\">{E(model)}</dd>\n<dt>Device</dt><dd id=\"device\">{E(device)}</dd>\n")
         .Append(threshold is { } t
             ? $"<dt>Threshold</dt><dd id=\"threshold\">raw score {F(t)} (pred_score 0.5); mask: normalized map &gt; 0.5</dd>\n"
             : "<dt>Threshold</dt><dd id=\"threshold\">none: the model has no fitted normalization (run 'gpuanomaly fit'); maps stretched to their own range, mask &gt; 0.5</dd>\n")
         .Append($"<dt>Images</dt><dd id=\"counts\">{rows.Count} scored: {anomalous} anomalous, {normal} normal</dd>\n</dl>\n")
         .Append("<table id=\"results\">\n<thead><tr><th>#</th><th>Panel (input | overlay | mask)</th><th>File</th><th>Raw score</th><th>pred_score</th><th>Label</th></tr></thead>\n<tbody>\n");
        for (int i = 0; i < sorted.Count; i++)
        {
            var r = sorted[i];
            string href = E(RelativeUrl(reportDir, r.Panel));
            b.Append($"<tr class=\"{(r.Label == "anomalous" ? "anomalous" : "normal")}\"><td class=\"num\">{i + 1}</td>")
             .Append($"<td><a href=\"{href}\"><img src=\"{href}\" alt=\"{E(Path.GetFileName(r.Path))}\"></a></td>")
             .Append($"<td class=\"file\">{E(r.Path)}</td><td class=\"num raw\">{F(r.RawScore)}</td>")
             .Append($"<td class=\"num pred\">{(r.PredScore is { } p ? F(p) : "")}</td><td class=\"label\">{E(r.Label ?? "")}</td></tr>\n");
        }
        b.Append("</tbody></table>\n<script>\nwindow.addEventListener('load', function () {\n")
         .Append("  var imgs = document.images, ok = 0;\n  for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;\n")
         .Append("  document.body.dataset.imagesLoaded = ok + '/' + imgs.length;\n});\n</script>\n</body></html>\n");
        return b.ToString();
    }

    /// <summary>The panel's path from the page's folder as a URL: '/' separators, each segment percent-escaped.</summary>
    private static string RelativeUrl(string reportDir, string panel)
    {
        string rel = Path.GetRelativePath(reportDir, Path.GetFullPath(panel));
        return string.Join('/', rel.Split(Path.DirectorySeparatorChar).Select(Uri.EscapeDataString));
    }
}
