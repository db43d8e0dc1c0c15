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
        using var sampling = new CancellationTokenSource();
        Task sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peakQueued = Math.Max(peakQueued, inference.QueuedRequests);
                await Task.Delay(5);
            }
        });

        ChatResponse[] responses = await Task.WhenAll(Enumerable.Range(0, requests).Select(i => Task.Run(() =>
            chat.GetResponseAsync($"request {i} : what is the pass key ?", new ChatOptions { MaxOutputTokens = 3 }))));
        await sampling.CancelAsync();
        await sampler;

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
