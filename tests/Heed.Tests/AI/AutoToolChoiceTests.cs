using Heed.AI;
using Heed.Llama;
using Heed.TestModels;
using Microsoft.Extensions.AI;

namespace Heed.Tests.AI;

/// <summary>
/// Under ToolMode Auto the model itself chooses between calling and answering: the grammar allows
/// both, and the first token decides. To test that plumbing without trusting a small model's
/// taste, these models have a choice known by construction: every layer writes nothing into the
/// residual stream and every token has the same embedding, so the logits are the same at every
/// step, and the output row of the token "{" (the first character of the JSON envelope's call) is
/// set far above every other row (a model that calls) or far below (a model that answers). No
/// code in Heed knows this; the choice is the model's probabilities.
/// </summary>
public sealed class AutoToolChoiceTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("heed-auto-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private LlamaModel Build(string name, float braceRow)
    {
        int brace = TinyLlama.Bpe.Tokens.IndexOf("{");
        Assert.True(brace >= 0);
        string path = Path.Combine(_folder, name + ".gguf");
        TinyLlama.Write(path, seed: 99, editTensor: (tensor, data) =>
        {
            if (tensor.EndsWith("attn_output.weight", StringComparison.Ordinal) || tensor.EndsWith("ffn_down.weight", StringComparison.Ordinal))
            {
                Array.Clear(data);
            }
            else if (tensor == "token_embd.weight")
            {
                Array.Fill(data, 1f);
            }
            else if (tensor == "output.weight")
            {
                // Row v holds the weights of token v's logit; the hidden state is all ones, so the logit is the row's sum.
                data.AsSpan(brace * TinyLlama.EmbeddingSize, TinyLlama.EmbeddingSize).Fill(braceRow);
            }
        });
        return LlamaModel.Load(path, new LlamaModelOptions { GpuLayers = 0 });
    }

    private static IChatClient WithFunctionInvocation(LlamaModel model) =>
        new LlamaChatClient(model, new LlamaContextOptions { ContextSize = 1024, Threads = 2 },
                new LlamaChatClientOptions { FallbackTemplate = "chatml", DefaultMaxOutputTokens = 160, JsonLimits = new(MaxStringLength: 12, MaxArrayItems: 2) })
            .AsBuilder().UseFunctionInvocation(configure: c => c.MaximumIterationsPerRequest = 2).Build();

    [Fact]
    public async Task AModelThatPrefersACallCallsTheToolAndItsResultIsSentBack()
    {
        using LlamaModel model = Build("calls", braceRow: 1f);
        using (IChatClient client = WithFunctionInvocation(model))
        {
            AIFunction tool = AIFunctionFactory.Create((string owner) => $"The pass key of {owner} is 4321.", "get_pass_key", "Looks up the pass key of a vault's owner.");
            var counting = new CountingFunction(tool);
            ChatResponse response = await client.GetResponseAsync("What is the pass key of the blue vault?",
                new ChatOptions { Tools = [counting], ToolMode = ChatToolMode.Auto });
            Assert.True(counting.Calls >= 1, "the model that prefers '{' should have called the tool");
            FunctionCallContent call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().First();
            FunctionResultContent result = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().First();
            Assert.Equal(call.CallId, result.CallId);
            Assert.Equal($"The pass key of {call.Arguments!["owner"]} is 4321.", result.Result?.ToString());
        }
    }

    [Fact]
    public async Task AModelThatPrefersTextAnswersWithoutCalling()
    {
        using LlamaModel model = Build("answers", braceRow: -1f);
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
        using LlamaModel model = Build("answers-required", braceRow: -1f);
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
