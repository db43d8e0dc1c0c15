using System.Diagnostics;
using System.IO.Compression;
using System.Text;

namespace Heed.Tests.Packaging;

/// <summary>
/// The NuGet story as a user lives it: pack Heed, restore examples/QuickStart from that local
/// feed (in a folder outside the repository, with a private package cache), and run it.
/// </summary>
[Collection(TinyModelCollection.Name)]
public sealed class PackageTests(TinyModelFixture fixture)
{
    [Fact]
    [Trait("Category", "Package")]
    public void TheQuickStartRunsFromTheLocalFeed()
    {
        string work = Directory.CreateTempSubdirectory("heed-package-").FullName;
        try
        {
            string feed = Path.Combine(work, "feed");
            foreach (string project in new[] { "bindings/Heed.Interop/Heed.Interop.csproj", "src/Heed/Heed.csproj" })
            {
                Dotnet(RepositoryPaths.Root, "pack", Path.Combine(RepositoryPaths.Root, project), "-c", "Release", "-o", feed,
                    "-p:IntermediateOutputPath=" + Path.Combine(work, "obj", Path.GetFileNameWithoutExtension(project)) + "/");
            }

            string interop = Directory.GetFiles(feed, "Heed.Interop.*.nupkg").Single();
            using (ZipArchive zip = ZipFile.OpenRead(interop))
            {
                string[] native = zip.Entries.Select(e => e.FullName).Where(n => n.StartsWith("runtimes/linux-x64/native/")).ToArray();
                Assert.Contains("runtimes/linux-x64/native/libheed.so", native);
                Assert.Contains("runtimes/linux-x64/native/libheed-llama.so", native);
                Assert.Contains("runtimes/linux-x64/native/libheed-ggml-cpu.so", native);
            }

            string app = Path.Combine(work, "QuickStart");
            Directory.CreateDirectory(app);
            foreach (string file in Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "examples", "QuickStart")))
            {
                File.Copy(file, Path.Combine(app, Path.GetFileName(file)));
            }
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="heed-local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            Dotnet(app, "restore", "--packages", Path.Combine(work, "packages"));
            string output = Dotnet(app, "run", "--no-restore", "--", fixture.ModelPath);
            Assert.Contains("2 layers, 4/2 heads, context 512", output);
            Assert.Contains("continuation:", output);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string Dotnet(string directory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using Process process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => output.AppendLine(e.Data);
        process.ErrorDataReceived += (_, e) => output.AppendLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Assert.True(process.WaitForExit(300_000), $"dotnet {string.Join(' ', args)} did not finish in 5 minutes");
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"dotnet {string.Join(' ', args)} failed:\n{output}");
        return output.ToString();
    }
}
