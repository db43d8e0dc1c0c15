using System.Text.Json;
using Heed.AI;
using Heed.Llama;
using Heed.TestModels;
using Heed.Tests;
using LLama;
using LLama.Common;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// A tool call in the model family's own format (Qwen2.5's template, on a random-weight tiny GGUF)
/// decoded through LLamaSharp's context and grammar sampler: the same raw text, token for token,
/// as through Heed's engine, and a call that parses.
/// </summary>
public sealed class ToolCallThroughLLamaSharpTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("heed-sharp-tools-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AHermesCallIsTheSameThroughLLamaSharpAsThroughHeed()
    {
        string template = File.ReadAllText(RepositoryPaths.LlamaCppTemplate("Qwen-Qwen2.5-7B-Instruct.jinja"));
        string path = Path.Combine(_folder, "qwen-template.gguf");
        TinyLlama.Write(path, seed: 4242, addMetadata: gguf => gguf.Add("tokenizer.chat_template", template));
        using LlamaModel heedModel = LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { GpuLayerCount = 0 });
        var engine = new LLamaSharpEngine(weights);
        var contextOptions = new LlamaContextOptions { ContextSize = 2048, Threads = 2 };
        var options = new LlamaChatClientOptions { DefaultMaxOutputTokens = 300, JsonLimits = new(MaxStringLength: 16, MaxArrayItems: 2) };
        using var heed = new LlamaChatClient(heedModel, contextOptions, options);
        using var sharp = new LlamaChatClient(engine, contextOptions, options);
        using JsonDocument schema = JsonDocument.Parse("""{"type": "object", "properties": {"owner": {"type": "string"}}, "required": ["owner"]}""");
        var chat = new ChatOptions
        {
            Tools = [AIFunctionFactory.CreateDeclaration("get_pass_key", "Looks up a pass key.", schema.RootElement.Clone())],
            ToolMode = ChatToolMode.RequireAny,
        };
        ChatMessage[] question = [new(ChatRole.User, "What is the pass key of the blue vault?")];

        (string expected, FunctionCallContent expectedCall) = await CallAsync(heed, question, chat);
        (string actual, FunctionCallContent actualCall) = await CallAsync(sharp, question, chat);
        output.WriteLine($"Heed: {expected}\nLLamaSharp: {actual}");
        Assert.StartsWith("<tool_call>\n{\"name\": \"get_pass_key\", \"arguments\": {\"owner\": \"", actual);
        Assert.EndsWith("\"}}\n</tool_call>", actual);
        Assert.Equal(expected, actual);
        Assert.Equal("get_pass_key", actualCall.Name);
        Assert.Equal(JsonSerializer.Serialize(expectedCall.Arguments), JsonSerializer.Serialize(actualCall.Arguments));
    }

    // The raw text the model wrote (the final update's RawRepresentation) and the call read from it.
    private static async Task<(string Raw, FunctionCallContent Call)> CallAsync(IChatClient client, ChatMessage[] messages, ChatOptions options)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (ChatResponseUpdate update in client.GetStreamingResponseAsync(messages, options))
        {
            updates.Add(update);
        }
        string raw = Assert.Single(updates.Select(u => u.RawRepresentation).OfType<string>());
        ChatResponse response = updates.ToChatResponse();
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        return (raw, Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()));
    }
}
