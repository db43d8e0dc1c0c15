namespace Heed.Tests;

/// <summary>Paths inside the repository the tests run from (found by walking up to SDK.sln).</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>A path in the CMake build folder (HEED_BUILD_DIR, else build/).</summary>
    public static string Build(params string[] parts) =>
        Path.Combine([Environment.GetEnvironmentVariable("HEED_BUILD_DIR") ?? Path.Combine(Root, "build"), .. parts]);

    private static string FindRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "SDK.sln")))
            {
                return d.FullName;
            }
        }
        throw new InvalidOperationException($"no SDK.sln above {AppContext.BaseDirectory}");
    }
}
