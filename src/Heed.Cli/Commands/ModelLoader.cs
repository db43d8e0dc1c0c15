using Heed.Llama;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Heed.Cli.Commands;

/// <summary>Loads a model with a progress bar and turns load failures into one clear line.</summary>
internal static class ModelLoader
{
    public static async Task<LlamaModel> LoadAsync(FileInfo file, int gpuLayers, bool verbose, CancellationToken cancellationToken)
    {
        if (verbose)
        {
            LlamaBackend.Logger = LoggerFactory.Create(b => b.AddConsole().SetMinimumLevel(LogLevel.Debug)).CreateLogger("llama.cpp");
        }
        LlamaBackend.EnsureInitialized();
        var options = new LlamaModelOptions { GpuLayers = gpuLayers };
        if (Console.IsErrorRedirected)
        {
            return await LlamaModel.LoadAsync(file.FullName, options, null, cancellationToken);
        }
        LlamaModel? model = null;
        await AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn())
            .StartAsync(async ctx =>
            {
                ProgressTask task = ctx.AddTask($"loading {file.Name}", maxValue: 1.0);
                var progress = new Progress<float>(p => task.Value = p);
                model = await LlamaModel.LoadAsync(file.FullName, options, progress, cancellationToken);
                task.Value = 1.0;
            });
        return model!;
    }
}
