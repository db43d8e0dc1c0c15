using System.Diagnostics;

namespace Heed.Tests.Storage;

/// <summary>The built `heed` tool (src/Heed.Cli, built before these tests), run as separate processes.</summary>
internal static class HeedCli
{
    private static readonly string Dll = FindDll();

    /// <summary>Starts heed with arguments, its outputs redirected.</summary>
    public static Process Start(params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Dll);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        return Process.Start(start)!;
    }

    /// <summary>Runs heed to the end; returns its exit code and outputs.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(TimeSpan timeout, params string[] arguments)
    {
        using Process process = Start(arguments);
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"heed {string.Join(' ', arguments)} did not finish in {timeout}");
        }
        return (process.ExitCode, await output, await error);
    }

    private static string FindDll()
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string dll = Path.Combine(RepositoryPaths.Root, "src", "Heed.Cli", "bin", output.Parent!.Name, output.Name, "Heed.Cli.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build src/Heed.Cli ({output.Parent.Name}) first: {dll} is missing.", dll);
    }
}
