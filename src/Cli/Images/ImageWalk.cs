using System.Runtime.InteropServices;

namespace GpuAnomaly.Cli.Images;

/// <summary>
/// The image files of a command's inputs: files as given, folders walked recursively in ordinal order. Links to
/// folders are followed once: a folder whose real path was already walked (a link loop, or a second link to the
/// same folder) is skipped with a message, so a loop cannot hang the walk or list the same image twice; a link to an
/// image file already listed is skipped the same way (each image is scored once, under its first path). Entries
/// that are empty or not regular files (FIFOs, sockets, devices: their size is 0) are skipped with a message, since
/// opening a FIFO blocks until someone writes to it.
/// </summary>
public static class ImageWalk
{
    /// <summary>Folder nesting deeper than this is skipped with a message (no dataset needs it; a bind-mount loop would).</summary>
    public const int MaxDepth = 64;

    public static List<string> Files(IEnumerable<string> inputs, Action<string> onSkip)
    {
        var files = new List<string>();
        var walked = new HashSet<string>(StringComparer.Ordinal);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        foreach (string input in inputs)
        {
            if (Directory.Exists(input)) Walk(input, 0, files, walked, listed, onSkip);
            else files.Add(input); // as given, even twice: a missing or undecodable file is reported when it is read
        }
        return files;
    }

    /// <summary>The image files under one folder (the same rules).</summary>
    public static List<string> Folder(string folder, Action<string> onSkip) => Files([folder], onSkip);

    private static void Walk(string dir, int depth, List<string> files, HashSet<string> walked, HashSet<string> listed, Action<string> onSkip)
    {
        if (!walked.Add(RealPath(dir)))
        {
            onSkip($"{dir}: a link to a folder already walked (a loop or a second link to it); skipped");
            return;
        }
        if (depth > MaxDepth)
        {
            onSkip($"{dir}: folders nested deeper than {MaxDepth}; skipped");
            return;
        }
        FileSystemInfo[] entries;
        try { entries = new DirectoryInfo(dir).GetFileSystemInfos(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            onSkip($"{dir}: cannot list the folder ({e.Message}); skipped");
            return;
        }
        foreach (var entry in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            string path = Path.Combine(dir, entry.Name);
            if (Directory.Exists(path)) Walk(path, depth + 1, files, walked, listed, onSkip); // Exists follows links
            else if (!ImageFile.IsImage(path)) continue;
            else if (!File.Exists(path)) onSkip($"{path}: a broken link; skipped");
            else if (new FileInfo(path).Length == 0) onSkip($"{path}: empty, or not a regular file (a FIFO, socket or device); skipped");
            else if (!listed.Add(RealPath(path))) onSkip($"{path}: a link to an image already listed; skipped");
            else files.Add(path);
        }
    }

    /// <summary>The path with every link resolved (POSIX realpath), or its full path where that is unavailable.</summary>
    private static string RealPath(string dir)
    {
        if (!OperatingSystem.IsWindows())
        {
            nint p = RealPath(dir, 0);
            if (p != 0)
            {
                try { return Marshal.PtrToStringUTF8(p)!; }
                finally { Free(p); }
            }
        }
        var info = new FileInfo(Path.GetFullPath(dir));
        return info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.FullName;
    }

    [DllImport("libc", EntryPoint = "realpath", CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern nint RealPath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, nint resolved);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(nint p);
}
