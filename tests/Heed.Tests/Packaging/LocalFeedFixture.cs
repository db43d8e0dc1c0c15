using System.Diagnostics;
using System.Text;

namespace Heed.Tests.Packaging;

/// <summary>
/// A local NuGet feed with this repository's Heed, Heed.Interop and Heed.Runtime.Cpu packages
/// (from the staged native libraries), in a folder outside the repository with a private package
/// cache, so that an app restores them as a user's app would.
/// </summary>
public sealed class LocalFeedFixture : IDisposable
{
    public LocalFeedFixture()
    {
        Work = Directory.CreateTempSubdirectory("heed-feed-").FullName;
        Feed = Path.Combine(Work, "feed");
        foreach (string project in new[] { "bindings/Heed.Interop", "src/Heed", "bindings/Heed.Runtime.Cpu" })
        {
            Pack(project, Feed);
        }
    }

    public string Work { get; }

    public string Feed { get; }

    /// <summary>Packs one project of the repository into <paramref name="output"/>; returns dotnet's output.</summary>
    public string Pack(string project, string output, params string[] properties) =>
        Dotnet(RepositoryPaths.Root, ["pack", Path.Combine(RepositoryPaths.Root, project), "-c", "Release", "-o", output,
            // Its own obj folder: packing here must not disturb the repository's build.
            "-p:IntermediateOutputPath=" + Path.Combine(Work, "obj", Path.GetFileName(project), Guid.NewGuid().ToString("N")) + "/",
            .. properties.Select(p => "-p:" + p)]);

    /// <summary>A copy of examples/QuickStart that restores from the feed.</summary>
    public string CopyQuickStart(string name)
    {
        string app = Path.Combine(Work, name);
        Directory.CreateDirectory(app);
        foreach (string file in Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "examples", "QuickStart")))
        {
            File.Copy(file, Path.Combine(app, Path.GetFileName(file)));
        }
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="heed-local" value="{Feed}" />
              </packageSources>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(Work, "packages")}" />
              </config>
            </configuration>
            """);
        return app;
    }

    public void Dispose() => Directory.Delete(Work, recursive: true);

    /// <summary>Runs dotnet; fails the test with its output when it exits nonzero.</summary>
    public static string Dotnet(string directory, IReadOnlyList<string> args) => Run("dotnet", directory, args, expectSuccess: true).Output;

    /// <summary>Runs a program and returns its exit code and output (stdout and stderr).</summary>
    public static (int ExitCode, string Output) Run(string program, string directory, IReadOnlyList<string> args, bool expectSuccess,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        using Process process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => output.AppendLine(e.Data);
        process.ErrorDataReceived += (_, e) => output.AppendLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Assert.True(process.WaitForExit(600_000), $"{program} {string.Join(' ', args)} did not finish in 10 minutes");
        process.WaitForExit();
        if (expectSuccess)
        {
            Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} failed:\n{output}");
        }
        return (process.ExitCode, output.ToString());
    }
}
