using Spectre.Console;

namespace Heed.Cli.Commands;

/// <summary>Runs a command body and prints expected failures as one line with exit code 1.</summary>
internal static class CliErrors
{
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]cancelled[/]");
            return 130;
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or HeedModelFormatException
                                       or HeedNativeException or DllNotFoundException or InvalidOperationException
                                       or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
