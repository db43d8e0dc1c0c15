using System.CommandLine;
using Heed.Llama;

namespace Heed.Cli.Commands;

/// <summary>`heed generate --model M --prompt P`: streams a continuation.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to continue", Required = true };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate", DefaultValueFactory = _ => 128 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var seed = new Option<uint?>("--seed") { Description = "Sampling seed (with --temperature > 0)" };
        var contextSize = new Option<int>("--context") { Description = "Context size in tokens (0: the model's)", DefaultValueFactory = _ => 0 };
        var command = new Command("generate", "Stream a continuation of a prompt")
        {
            model, prompt, maxTokens, temperature, seed, contextSize, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync(async () =>
        {
            var options = new GenerationOptions
            {
                MaxTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                Seed = parse.GetValue(seed),
            };
            string text = parse.GetValue(prompt)!;
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers),
                parse.GetValue(verbose), cancellationToken);
            using LlamaContext context = m.CreateContext(new LlamaContextOptions { ContextSize = parse.GetValue(contextSize) });
            Console.Write(text);
            await foreach (string piece in context.GenerateAsync(text, options, cancellationToken))
            {
                Console.Write(piece);
            }
            Console.WriteLine();
            return 0;
        }));
        return command;
    }
}
