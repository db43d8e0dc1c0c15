namespace Heed.AI;

/// <summary>
/// The folders tools may read. A path is allowed when its real location (full path, every
/// symbolic link resolved) is one of the roots or inside one; "..", links and look-alike
/// prefixes ("/data-evil" for root "/data") do not get out.
/// </summary>
public sealed class AllowedRoots
{
    private const int MaxLinkDepth = 40;
    private static readonly StringComparison PathComparison =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    /// <summary>Allows the given folders (relative ones against the current directory).</summary>
    public AllowedRoots(IEnumerable<string> roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        var real = new List<string>();
        foreach (string root in roots)
        {
            if (string.IsNullOrWhiteSpace(root))
            {
                throw new ArgumentException("An allowed root is empty; list folders only.", nameof(roots));
            }
            real.Add(TrimSeparator(GetRealPath(root)));
        }
        Roots = real;
    }

    /// <summary>The roots, as real full paths.</summary>
    public IReadOnlyList<string> Roots { get; }

    /// <summary>Whether the path lies inside a root.</summary>
    public bool IsAllowed(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string real = GetRealPath(path);
        return Roots.Any(root => IsInside(real, root));
    }

    /// <summary>The real full path of <paramref name="path"/> if it lies inside a root.</summary>
    /// <exception cref="UnauthorizedAccessException">It lies outside every root (or no roots are configured).</exception>
    public string Resolve(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string real = GetRealPath(path);
        if (Roots.Any(root => IsInside(real, root)))
        {
            return real;
        }
        if (Roots.Count == 0)
        {
            throw new UnauthorizedAccessException(
                $"Reading '{path}' is refused: no folders are allowed. Add the folder to HeedOptions.AllowedRoots (heed mcp: --allowed-root).");
        }
        throw new UnauthorizedAccessException(
            $"Reading '{path}' is refused: it resolves to '{real}', outside the allowed roots ({string.Join(", ", Roots)}). " +
            "Move it under an allowed root or add its folder to HeedOptions.AllowedRoots (heed mcp: --allowed-root).");
    }

    private static bool IsInside(string path, string root)
    {
        if (string.Equals(TrimSeparator(path), root, PathComparison))
        {
            return true;
        }
        string prefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        return path.StartsWith(prefix, PathComparison);
    }

    /// <summary>The full path with every symbolic link along it resolved (parts that do not exist are kept as written).</summary>
    public static string GetRealPath(string path) => GetRealPath(path, 0);

    private static string GetRealPath(string path, int depth)
    {
        if (depth > MaxLinkDepth)
        {
            throw new IOException($"'{path}' has more than {MaxLinkDepth} levels of symbolic links (a loop?).");
        }
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full) ?? "";
        string current = root;
        string[] parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            string next = Path.Combine(current, parts[i]);
            FileSystemInfo? target = null;
            try
            {
                target = new FileInfo(next).LinkTarget is not null ? File.ResolveLinkTarget(next, returnFinalTarget: true) : null;
            }
            catch (IOException)
            {
            }
            // A link's target may itself sit under linked folders: resolve it whole, then go on.
            current = target is null ? next : GetRealPath(target.FullName, depth + 1);
        }
        return current;
    }

    private static string TrimSeparator(string path) =>
        path.Length > 1 && path.EndsWith(Path.DirectorySeparatorChar) && Path.GetPathRoot(path) != path ? path[..^1] : path;
}
