using System.CommandLine;
using Heed.Llama;

namespace Heed.Cli.Commands;

/// <summary>`heed perplexity --model M --file F`: perplexity as llama-perplexity measures it.</summary>
internal static class PerplexityCommand
{
    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        var file = new Option<FileInfo>("--file", "-f") { Description = "UTF-8 text to score", Required = true };
        var contextSize = new Option<int>("--context") { Description = "Chunk size in tokens (0: the model's context)", DefaultValueFactory = _ => 0 };
        var command = new Command("perplexity", "Perplexity of a text (chunks of the context; the second half of each is scored)")
        {
            model, file, contextSize, gpuLayers,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            FileInfo f = parse.GetValue(file)!;
            if (!f.Exists)
            {
                throw new FileNotFoundException($"Text file '{f.FullName}' does not exist.", f.FullName);
            }
            string text = await File.ReadAllTextAsync(f.FullName, ct);
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers), false, ct);
            Perplexity.Result result = await Task.Run(() => Perplexity.Measure(m, text, parse.GetValue(contextSize), null, ct), ct);
            Console.WriteLine($"perplexity {result.Value:F3} over {result.ScoredTokens} scored tokens in {result.Chunks} chunks of {(parse.GetValue(contextSize) > 0 ? parse.GetValue(contextSize) : m.TrainedContextLength)}");
            return 0;
        }));
        return command;
    }
}
