using Heed.AI;
using Heed.Hosting;
using Heed.Llama;
using Microsoft.Extensions.AI;

namespace Heed.Tests.AI;

[Collection(TinyModelCollection.Name)]
public sealed class LlamaChatClientTests(TinyModelFixture fixture)
{
    private static readonly ChatMessage[] Question = [new(ChatRole.User, "what is the pass key ?")];

    private LlamaChatClient Client(int poolSize = 1) => new(fixture.Model,
        new LlamaContextOptions { ContextSize = 256, Threads = 2 },
        new LlamaChatClientOptions { FallbackTemplate = "chatml", DefaultMaxOutputTokens = 8 }, poolSize);

    private int PromptTokens(params (string, string)[] messages)
    {
        string prompt = ChatTemplate.FromName("chatml").Format(messages);
        return fixture.Model.Tokenizer.Tokenize(prompt, addSpecial: false, parseSpecial: true).Length + 1; // + BOS
    }

    [Fact]
    public async Task AnswersWithUsageAndMetadata()
    {
        using LlamaChatClient client = Client();
        ChatResponse response = await client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 6 });
        Assert.Equal(ChatRole.Assistant, response.Messages.Single().Role);
        Assert.NotNull(response.Usage);
        Assert.Equal(PromptTokens(("user", "what is the pass key ?")), response.Usage!.InputTokenCount);
        Assert.InRange(response.Usage.OutputTokenCount!.Value, 1, 6);
        Assert.Equal(response.Usage.InputTokenCount + response.Usage.OutputTokenCount, response.Usage.TotalTokenCount);
        Assert.Equal(response.Usage.OutputTokenCount == 6 ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal("tiny-llama", response.ModelId);
        Assert.StartsWith("heed-", response.ResponseId);
        Assert.Equal("heed", client.GetService<ChatClientMetadata>()!.ProviderName);
    }

    [Fact]
    public async Task StreamingGivesTheSameGreedyTextAsOneResponse()
    {
        using LlamaChatClient client = Client();
        var options = new ChatOptions { MaxOutputTokens = 10, Temperature = 0 };
        ChatResponse whole = await client.GetResponseAsync(Question, options);
        var updates = new List<ChatResponseUpdate>();
        await foreach (ChatResponseUpdate update in client.GetStreamingResponseAsync(Question, options))
        {
            updates.Add(update);
        }
        Assert.True(updates.Count >= 2, "text updates, then the usage update");
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        UsageContent usage = updates[^1].Contents.OfType<UsageContent>().Single();
        Assert.Equal(whole.Usage!.OutputTokenCount, usage.Details.OutputTokenCount);
        Assert.NotNull(updates[^1].FinishReason);
    }

    [Fact]
    public async Task StopSequenceCutsTheAnswerBeforeIt()
    {
        using LlamaChatClient client = Client();
        string full = (await client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 24 })).Text;
        Assert.True(full.Length >= 4, $"the model should say something: '{full}'");
        string stop = full.Substring(full.Length / 2, 2);
        int cut = full.IndexOf(stop, StringComparison.Ordinal);
        ChatResponse stopped = await client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 24, StopSequences = [stop] });
        Assert.Equal(full[..cut], stopped.Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }

    [Fact]
    public async Task SeededSamplingRepeatsAndOptionsReachTheSampler()
    {
        using LlamaChatClient client = Client();
        ChatOptions Sampled(long seed) => new() { MaxOutputTokens = 12, Temperature = 1.5f, TopK = 0, TopP = 1f, Seed = seed };
        string a = (await client.GetResponseAsync(Question, Sampled(7))).Text;
        string b = (await client.GetResponseAsync(Question, Sampled(7))).Text;
        Assert.Equal(a, b);
        var texts = new HashSet<string>();
        for (long seed = 1; seed <= 6; seed++)
        {
            texts.Add((await client.GetResponseAsync(Question, Sampled(seed))).Text);
        }
        Assert.True(texts.Count > 1, "different seeds at temperature 1.5 should not all give the same text");
    }

    [Fact]
    public async Task InstructionsAndHistoryReachThePrompt()
    {
        using LlamaChatClient client = Client();
        ChatMessage[] history = [new(ChatRole.User, "hi"), new(ChatRole.Assistant, "hello"), new(ChatRole.User, "the key ?")];
        ChatResponse response = await client.GetResponseAsync(history, new ChatOptions { Instructions = "be brief", MaxOutputTokens = 1 });
        Assert.Equal(PromptTokens(("system", "be brief"), ("user", "hi"), ("assistant", "hello"), ("user", "the key ?")),
            response.Usage!.InputTokenCount);
    }

    [Fact]
    public async Task BadRequestsFailBeforeTakingAContext()
    {
        using LlamaChatClient client = Client();
        LlamaContextPool pool = client.GetService<LlamaInference>()!.Pool;
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync(Question, new ChatOptions { Seed = -1 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync(Question, new ChatOptions { Seed = (long)uint.MaxValue + 1 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 0 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync(Question, new ChatOptions { TopP = 1.5f }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync(Question, new ChatOptions { Temperature = -1 }));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Question, new ChatOptions { StopSequences = [""] }));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([]));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.System, "only a system message")]));
        Assert.Equal(0, pool.Created);
    }

    [Fact]
    public async Task PromptLongerThanTheContextIsAClearError()
    {
        using LlamaChatClient client = Client();
        string longText = string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog . ", 80));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, longText)]));
        Assert.Contains("ContextSize", e.Message);
    }

    [Fact]
    public async Task ContextsAreReusedAcrossRequests()
    {
        using LlamaChatClient client = Client(poolSize: 2);
        for (int i = 0; i < 5; i++)
        {
            await client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 2 });
        }
        LlamaContextPool pool = client.GetService<LlamaInference>()!.Pool;
        Assert.Equal(1, pool.Created);
        Assert.Equal(0, pool.InUse);
    }

    [Fact]
    public async Task CancelledRequestThrowsAndFreesTheContext()
    {
        using LlamaChatClient client = Client();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(Question, cancellationToken: cts.Token));
        using var stopEarly = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (ChatResponseUpdate _ in client.GetStreamingResponseAsync(Question, new ChatOptions { MaxOutputTokens = 50 }, stopEarly.Token))
            {
                await stopEarly.CancelAsync();
            }
        });
        Assert.Equal(0, client.GetService<LlamaInference>()!.Pool.InUse);
        ChatResponse after = await client.GetResponseAsync(Question, new ChatOptions { MaxOutputTokens = 2 });
        Assert.NotNull(after.Usage);
    }

    [Fact]
    public void ModelWithoutUsableTemplateNeedsAFallback()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new LlamaChatClient(fixture.Model));
        Assert.Contains("FallbackTemplate", e.Message);
    }
}
