using Heed.Hosting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Heed.Tests.Hosting;

/// <summary>Many concurrent requests against one model through the pool: every one is answered.</summary>
[Collection(TinyModelCollection.Name)]
public sealed class ChatLoadTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task TwoHundredConcurrentRequestsAreAllAnswered()
    {
        const int requests = 200;
        await using ServiceProvider services = new ServiceCollection()
            .AddHeed(o =>
            {
                o.ModelPath = fixture.ModelPath;
                o.GpuLayers = 0;
                o.ContextSize = 128;
                o.PoolSize = 4;
                o.Threads = 1;
                o.FallbackChatTemplate = "chatml";
                o.RequestTimeout = TimeSpan.FromMinutes(5);
            })
            .BuildServiceProvider();
        IChatClient chat = services.GetRequiredService<IChatClient>();
        LlamaInference inference = services.GetRequiredKeyedService<LlamaInference>(HeedServiceKeys.Chat);
        int peakQueued = 0;
        async Task<ChatResponse> Ask(int i)
        {
            ChatResponse response = await chat.GetResponseAsync($"request {i} : what is the pass key ?", new ChatOptions { MaxOutputTokens = 3 });
            // Read as each request finishes: while the first ones finish, most others still wait.
            int queued = inference.QueuedRequests;
            int seen;
            while (queued > (seen = Volatile.Read(ref peakQueued)) && Interlocked.CompareExchange(ref peakQueued, queued, seen) != seen)
            {
            }
            return response;
        }

        // Issued from one thread: each call runs to its first wait, so all 200 are in flight at once.
        Task<ChatResponse>[] inFlight = Enumerable.Range(0, requests).Select(Ask).ToArray();
        ChatResponse[] responses = await Task.WhenAll(inFlight);

        Assert.Equal(requests, responses.Length);
        Assert.All(responses, r =>
        {
            Assert.InRange(r.Usage!.OutputTokenCount!.Value, 1, 3);
            Assert.Single(r.Messages);
        });
        Assert.Equal(requests, responses.Select(r => r.ResponseId).Distinct().Count());
        Assert.InRange(inference.Pool.Created, 1, 4);
        Assert.Equal(0, inference.Pool.InUse);
        Assert.True(peakQueued > 0, "with 200 requests and 4 contexts, some must have waited");
    }
}
