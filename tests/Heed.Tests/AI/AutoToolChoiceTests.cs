using Heed.AI;
using Heed.Llama;
using Heed.TestModels;
using Microsoft.Extensions.AI;

namespace Heed.Tests.AI;

/// <summary>
/// Under ToolMode Auto the model itself chooses between calling and answering: the grammar allows
/// both, and the first token decides. To test that plumbing without trusting a small model's
/// taste, these models' choice is known by construction (<see cref="ToolChoiceModel"/>): one calls
/// while its context holds no digit and answers once a tool result with a number is in it; the
/// other never calls. No code in Heed knows this; the choice is the model's probabilities.
/// </summary>
public sealed class AutoToolChoiceTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("heed-auto-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private LlamaModel Build(string name, bool callsUntilADigit)
    {
        string path = Path.Combine(_folder, name + ".gguf");
        ToolChoiceModel.Write(path, callsUntilADigit);
        return LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
    }

    private static IChatClient WithFunctionInvocation(LlamaModel model) =>
        new LlamaChatClient(model, new LlamaContextOptions { ContextSize = 1024, Threads = 2 },
                new LlamaChatClientOptions { FallbackTemplate = "chatml", DefaultMaxOutputTokens = 160, JsonLimits = new(MaxStringLength: 12, MaxArrayItems: 2) })
            .AsBuilder().UseFunctionInvocation(configure: c => c.MaximumIterationsPerRequest = 4).Build();

    [Fact]
    public async Task AModelThatPrefersACallCallsOnceThenAnswersFromTheResult()
    {
        using LlamaModel model = Build("calls", callsUntilADigit: true);
        using IChatClient client = WithFunctionInvocation(model);
        var counting = new CountingFunction(AIFunctionFactory.Create((string owner) => "The pass key is 48213.", "get_pass_key", "Looks up the pass key of a vault's owner."));
        ChatResponse response = await client.GetResponseAsync("What is the pass key of the blue vault?",
            new ChatOptions { Tools = [counting], ToolMode = ChatToolMode.Auto });
        // Called while the context had no digit; the result put one there, so the next reply is text.
        Assert.Equal(1, counting.Calls);
        FunctionCallContent call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        FunctionResultContent result = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>());
        Assert.Equal(call.CallId, result.CallId);
        Assert.Equal("The pass key is 48213.", result.Result?.ToString());
        ChatMessage last = response.Messages[^1];
        Assert.Equal(ChatRole.Assistant, last.Role);
        Assert.False(string.IsNullOrWhiteSpace(last.Text));
        Assert.NotEqual('{', last.Text[0]);
    }

    [Fact]
    public async Task AModelThatPrefersTextAnswersWithoutCalling()
    {
        using LlamaModel model = Build("answers", callsUntilADigit: false);
        using (IChatClient client = WithFunctionInvocation(model))
        {
            var counting = new CountingFunction(AIFunctionFactory.Create((string owner) => "unused", "get_pass_key", "Looks up the pass key of a vault's owner."));
            ChatResponse response = await client.GetResponseAsync("What is the pass key of the blue vault?",
                new ChatOptions { Tools = [counting], ToolMode = ChatToolMode.Auto });
            Assert.Equal(0, counting.Calls);
            Assert.Empty(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
            Assert.False(string.IsNullOrWhiteSpace(response.Text));
            Assert.NotEqual('{', response.Text[0]);
        }
    }

    [Fact]
    public async Task UnderRequiredTheModelThatPrefersTextStillCalls()
    {
        // The same model as above: only Auto leaves the choice to it.
        using LlamaModel model = Build("answers-required", callsUntilADigit: false);
        using (IChatClient client = WithFunctionInvocation(model))
        {
            var counting = new CountingFunction(AIFunctionFactory.Create((string owner) => "The pass key is 4321.", "get_pass_key", "Looks up a pass key."));
            await client.GetResponseAsync("What is the pass key of the blue vault?",
                new ChatOptions { Tools = [counting], ToolMode = ChatToolMode.RequireAny });
            Assert.True(counting.Calls >= 1);
        }
    }

    /// <summary>Counts invocations of the function it wraps.</summary>
    private sealed class CountingFunction(AIFunction inner) : DelegatingAIFunction(inner)
    {
        public int Calls { get; private set; }

        protected override ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            Calls++;
            return base.InvokeCoreAsync(arguments, cancellationToken);
        }
    }
}
