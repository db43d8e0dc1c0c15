namespace Heed.Tests;

/// <summary>Paths inside the repository the tests run from (found by walking up to SDK.sln).</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>A path in the CMake build folder (HEED_BUILD_DIR, else build/).</summary>
    public static string Build(params string[] parts) =>
        Path.Combine([Environment.GetEnvironmentVariable("HEED_BUILD_DIR") ?? Path.Combine(Root, "build"), .. parts]);

    /// <summary>
    /// A chat template as published with a model family, from the pinned llama.cpp source the build
    /// compiled (its models/templates folder): real templates, without copies of them in this repository.
    /// </summary>
    public static string LlamaCppTemplate(string file)
    {
        string? source = Environment.GetEnvironmentVariable("HEED_LLAMA_SOURCE_DIR");
        string cache = Build("CMakeCache.txt");
        if (string.IsNullOrEmpty(source) && File.Exists(cache))
        {
            const string key = "HEED_LLAMA_SOURCE_DIR:PATH=";
            source = File.ReadLines(cache).FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?[key.Length..];
        }
        string path = Path.Combine(source ?? "", "models", "templates", file);
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"no llama.cpp chat template {file} (looked in {path}): run ./build.sh native first, or set HEED_LLAMA_SOURCE_DIR");
    }

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
