using System.Diagnostics;
using Heed.TestModels;

namespace Heed.Mcp.Tests;

/// <summary>Where the built `heed` tool is, and a tiny model and document folders for it to work on.</summary>
public sealed class HeedProcess : IDisposable
{
    public HeedProcess()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("heed-mcp-tests-").FullName;
        ModelPath = Path.Combine(Directory, "tiny-llama.gguf");
        TinyLlama.Write(ModelPath);
        Documents = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "docs")).FullName;
        File.WriteAllText(Path.Combine(Documents, "keys.txt"), "the pass key is hidden in the text . remember the pass key .");
        File.WriteAllText(Path.Combine(Documents, "fox.md"), "the quick brown fox jumps over the lazy dog .");
        Outside = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "docs-outside")).FullName;
        File.WriteAllText(Path.Combine(Outside, "secret.txt"), "the secret is not for the model .");
        HeedDll = FindHeedDll();
    }

    public string Directory { get; }

    public string ModelPath { get; }

    /// <summary>The folder heed mcp is allowed to read.</summary>
    public string Documents { get; }

    /// <summary>A sibling folder whose name starts like <see cref="Documents"/>, not allowed.</summary>
    public string Outside { get; }

    public string HeedDll { get; }

    /// <summary>The dotnet host running these tests, which also runs heed.dll.</summary>
    public static string DotnetHost => Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";

    // Heed.Cli.dll (the heed tool) is built next to this project's configuration: src/Heed.Cli/bin/<Configuration>/net10.0/.
    private static string FindHeedDll()
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string framework = output.Name;
        string configuration = output.Parent!.Name;
        for (DirectoryInfo? d = output; d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "SDK.sln")))
            {
                string dll = Path.Combine(d.FullName, "src", "Heed.Cli", "bin", configuration, framework, "Heed.Cli.dll");
                return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build src/Heed.Cli ({configuration}) first: {dll} is missing.", dll);
            }
        }
        throw new InvalidOperationException($"no SDK.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>Runs heed with arguments and standard input; returns the exit code and both outputs.</summary>
    public async Task<(int ExitCode, string Output, string Error)> RunAsync(string input, TimeSpan timeout, params string[] arguments)
    {
        var start = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(HeedDll);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"heed {string.Join(' ', arguments)} did not exit in {timeout}; stderr: {await error}");
        }
        return (process.ExitCode, await output, await error);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
