namespace GpuAnomaly.Cli.Images;

/// <summary>
/// Output file names for a run's inputs that never collide: each input keeps its path relative to the deepest
/// folder holding all of them (good/001.png and bad/001.png become good/001_heatmap.png and bad/001_heatmap.png), and
/// names that still clash (the same file given twice, names differing only in case on a case-insensitive disk) get
/// "~2", "~3", ... before the suffix.
/// </summary>
public static class OutputNames
{
    /// <summary>Input path to output path under <paramref name="outDir"/>, for every distinct input path.</summary>
    public static Dictionary<string, string> Map(IReadOnlyList<string> inputs, string outDir, string suffix)
    {
        var full = inputs.Distinct(StringComparer.Ordinal).ToDictionary(p => p, Path.GetFullPath, StringComparer.Ordinal);
        string root = CommonFolder(full.Values);
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string input in inputs)
        {
            if (names.ContainsKey(input)) continue;
            string relative = Path.GetRelativePath(root, full[input]);
            if (Path.IsPathRooted(relative)) relative = relative[Path.GetPathRoot(relative)!.Length..]; // another drive: never outside outDir
            string stem = Path.Combine(Path.GetDirectoryName(relative) ?? "", Path.GetFileNameWithoutExtension(relative));
            string name = stem + suffix;
            for (int n = 2; !taken.Add(name); n++) name = $"{stem}~{n}{suffix}";
            names[input] = Path.Combine(outDir, name);
        }
        return names;
    }

    /// <summary>The deepest folder that holds every path (their common leading folder components).</summary>
    private static string CommonFolder(IEnumerable<string> fullPaths)
    {
        string[]? common = null;
        foreach (string path in fullPaths)
        {
            var parts = (Path.GetDirectoryName(path) ?? path).Split(Path.DirectorySeparatorChar);
            if (common is null) { common = parts; continue; }
            int n = 0;
            while (n < common.Length && n < parts.Length && common[n] == parts[n]) n++;
            common = common[..n];
        }
        if (common is null || common.Length == 0) return Path.GetPathRoot(Environment.CurrentDirectory) ?? "/";
        string joined = string.Join(Path.DirectorySeparatorChar, common);
        return joined.Length == 0 ? Path.DirectorySeparatorChar.ToString() : joined;
    }
}
