using System.CommandLine;
using Heed.AI;
using Heed.Llama;
using Microsoft.Extensions.AI;

namespace Heed.Cli.Commands;

/// <summary>`heed chat --model M`: an interactive chat with streamed answers; /exit ends it, /clear forgets the conversation.</summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var system = new Option<string?>("--system", "-s") { Description = "A system message that opens the conversation" };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens per answer", DefaultValueFactory = _ => 512 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "0 = greedy", DefaultValueFactory = _ => 0.7f };
        var seed = new Option<long?>("--seed") { Description = "Sampling seed" };
        var contextSize = new Option<int>("--context") { Description = "Context size in tokens (0: the model's)", DefaultValueFactory = _ => 4096 };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "llama.cpp template name for models without a usable one (e.g. chatml)" };
        var command = new Command("chat", "Chat with a model (streaming; /exit to quit, /clear to start over)")
        {
            model, system, maxTokens, temperature, seed, contextSize, chatTemplate, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync(async () =>
        {
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers),
                parse.GetValue(verbose), cancellationToken);
            using LlamaChatClient client = CreateClient(m, parse.GetValue(contextSize), parse.GetValue(chatTemplate));
            var options = new ChatOptions
            {
                MaxOutputTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                Seed = parse.GetValue(seed),
            };
            await RunLoopAsync(client, parse.GetValue(system), options, Console.In, Console.Out, cancellationToken);
            return 0;
        }));
        return command;
    }

    private static LlamaChatClient CreateClient(LlamaModel model, int contextSize, string? chatTemplate)
    {
        try
        {
            return new LlamaChatClient(model, new LlamaContextOptions { ContextSize = contextSize },
                new LlamaChatClientOptions { FallbackTemplate = chatTemplate });
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"{e.Message} With heed chat: --chat-template chatml (or the model's family: llama3, mistral-v7, gemma, ...).", e);
        }
    }

    /// <summary>Reads user lines until /exit or end of input; streams each answer and keeps the history.</summary>
    internal static async Task RunLoopAsync(IChatClient client, string? system, ChatOptions options, TextReader input, TextWriter output,
        CancellationToken cancellationToken)
    {
        var history = new List<ChatMessage>();
        if (!string.IsNullOrWhiteSpace(system))
        {
            history.Add(new ChatMessage(ChatRole.System, system));
        }
        int systemMessages = history.Count;
        await output.WriteLineAsync("heed chat: type a message; /clear starts over, /exit quits.");
        while (!cancellationToken.IsCancellationRequested)
        {
            await output.WriteAsync("> ");
            await output.FlushAsync(cancellationToken);
            string? line = await input.ReadLineAsync(cancellationToken);
            if (line is null || line.Trim() is "/exit" or "/quit")
            {
                break;
            }
            if (line.Trim() == "/clear")
            {
                history.RemoveRange(systemMessages, history.Count - systemMessages);
                await output.WriteLineAsync("(conversation cleared)");
                continue;
            }
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            history.Add(new ChatMessage(ChatRole.User, line));
            var updates = new List<ChatResponseUpdate>();
            try
            {
                await foreach (ChatResponseUpdate update in client.GetStreamingResponseAsync(history, options, cancellationToken))
                {
                    updates.Add(update);
                    await output.WriteAsync(update.Text);
                    await output.FlushAsync(cancellationToken);
                }
            }
            catch (ArgumentException e)
            {
                // A conversation that outgrew the context: say so and let the user start over.
                history.RemoveAt(history.Count - 1);
                await output.WriteLineAsync($"error: {e.Message} Type /clear to start over.");
                continue;
            }
            await output.WriteLineAsync();
            ChatResponse response = updates.ToChatResponse();
            history.AddRange(response.Messages);
            if (response.FinishReason == ChatFinishReason.Length)
            {
                await output.WriteLineAsync("(answer cut at the token limit)");
            }
        }
    }
}
