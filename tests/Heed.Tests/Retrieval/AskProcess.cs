using System.Diagnostics;

namespace Heed.Tests.Retrieval;

/// <summary>Runs `heed ask` (the built CLI) as its own process.</summary>
internal static class AskProcess
{
    public sealed record Result(int ExitCode, string Output, string Errors);

    public static Result Run(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        string cli = Path.Combine(RepositoryPaths.Root, "src", "Heed.Cli", "bin", "Release", "net10.0", "Heed.Cli.dll");
        Assert.True(File.Exists(cli), $"{cli} is missing; build the solution");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        start.ArgumentList.Add(cli);
        start.ArgumentList.Add("ask");
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> errors = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(300_000), "heed ask did not finish in 5 minutes");
        return new Result(process.ExitCode, output, errors.Result);
    }
}
