using System.Diagnostics;
using Heed.Tests;
using Heed.Tests.ShippedModel;
using Xunit.Abstractions;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// Heed and LLamaSharp 0.30.0 (CPU backend) in one process, in both load orders: each runtime's
/// greedy tokens equal those it gives alone. One process per case (a library, once loaded, stays).
/// </summary>
public sealed class LoadOrderTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("heed-first")]
    [InlineData("llamasharp-first")]
    public void EachRuntimeGivesItsOwnGreedyTokens(string order)
    {
        string heedAlone = Assert.Single(Run("heed"), l => l.StartsWith("heed:", StringComparison.Ordinal));
        string sharpAlone = Assert.Single(Run("llamasharp"), l => l.StartsWith("llamasharp:", StringComparison.Ordinal));
        Assert.True(heedAlone.Split(' ').Length > 8, $"Heed generated too little to compare: {heedAlone}");
        Assert.True(sharpAlone.Split(' ').Length > 8, $"LLamaSharp generated too little to compare: {sharpAlone}");

        string[] together = Run(order);
        Assert.Equal(3, together.Length);
        foreach (string line in together)
        {
            Assert.Equal(line.StartsWith("heed:", StringComparison.Ordinal) ? heedAlone : sharpAlone, line);
        }
    }

    private string[] Run(string order)
    {
        // The app sits next to this assembly's build: tests/Heed.LLamaSharp.LoadOrder/bin/<configuration>/<tfm>/.
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string app = Path.Combine(RepositoryPaths.Root, "tests", "Heed.LLamaSharp.LoadOrder", "bin", here.Parent!.Name, here.Name,
            "Heed.LLamaSharp.LoadOrder.dll");
        Assert.True(File.Exists(app), $"{app} is not built");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { app, order, ShippedModelFixture.ModelFile })
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        output.WriteLine($"{order}: exit {process.ExitCode}\n{stdout}");
        Assert.True(process.ExitCode == 0, $"{order}: exit code {process.ExitCode}; stderr: {stderr.Result}");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("heed:", StringComparison.Ordinal) || l.StartsWith("llamasharp:", StringComparison.Ordinal))
            .ToArray();
    }
}
