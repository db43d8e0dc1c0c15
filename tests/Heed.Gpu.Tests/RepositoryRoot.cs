namespace Heed.Gpu.Tests;

/// <summary>
/// The repository these tests run against. On the GPU machine the tests run as a published app
/// outside the tree, and xunit's runner moves the working directory to the app's folder, so
/// tests/gpu/run.sh names the root in HEED_REPO_ROOT; otherwise the search walks up from the app.
/// </summary>
internal static class RepositoryRoot
{
    public static string Path { get; } = Find();

    public static string File(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable("HEED_REPO_ROOT") is { Length: > 0 } named)
        {
            return System.IO.File.Exists(System.IO.Path.Combine(named, "SDK.sln"))
                ? named
                : throw new InvalidOperationException($"HEED_REPO_ROOT={named} holds no SDK.sln");
        }
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (System.IO.File.Exists(System.IO.Path.Combine(d.FullName, "SDK.sln")))
            {
                return d.FullName;
            }
        }
        throw new InvalidOperationException($"no SDK.sln above {AppContext.BaseDirectory}: set HEED_REPO_ROOT to the repository");
    }
}
