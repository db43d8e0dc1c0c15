using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Heed.AI;
using Heed.Hosting;
using Heed.Llama;
using Heed.Ranking;
using Microsoft.Extensions.AI;

namespace Heed.Tests.Hosting;

[Collection(TinyModelCollection.Name)]
public sealed class HeedTelemetryTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task ListenersSeeSpansHistogramsAndTheWaitersGauge()
    {
        var measurements = new ConcurrentBag<(string Instrument, double Value, string? Pool)>();
        using var meterListener = new MeterListener();
        meterListener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == HeedTelemetry.Name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        void Record<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        {
            string? pool = null;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "pool")
                {
                    pool = tag.Value as string;
                }
            }
            measurements.Add((instrument.Name, Convert.ToDouble(value), pool));
        }
        meterListener.SetMeasurementEventCallback<double>(Record);
        meterListener.SetMeasurementEventCallback<int>(Record);
        meterListener.Start();

        var spans = new ConcurrentBag<string>();
        using var activityListener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == HeedTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = activity => spans.Add(activity.OperationName),
        };
        ActivitySource.AddActivityListener(activityListener);

        using var chat = new LlamaChatClient(fixture.Model, new LlamaContextOptions { ContextSize = 128, Threads = 1 },
            new LlamaChatClientOptions { FallbackTemplate = "chatml" });
        await chat.GetResponseAsync("what is the pass key ?", new ChatOptions { MaxOutputTokens = 4 });

        var reranker = new TelemetryDocumentReranker(new SlowReranker());
        await reranker.RerankAsync("key", ["a", "b"]);

        string poolName = "gauge-" + Guid.NewGuid().ToString("N")[..8];
        using var pool = new LlamaContextPool(fixture.Model, new LlamaContextOptions { ContextSize = 64, Threads = 1 }, 1, poolName);
        LlamaContextLease held = await pool.RentAsync();
        ValueTask<LlamaContextLease> waiting = pool.RentAsync();
        await HeedResilienceTests.WaitUntil(() => pool.Waiters == 1);
        meterListener.RecordObservableInstruments();
        held.Dispose();
        (await waiting).Dispose();
        meterListener.RecordObservableInstruments();

        Assert.Contains(measurements, m => m.Instrument == "heed.generation.tokens_per_second" && m.Value > 0);
        Assert.Contains(measurements, m => m.Instrument == "heed.rerank.duration" && m.Value >= 0.02);
        var gauge = measurements.Where(m => m.Instrument == "heed.pool.waiters" && m.Pool == poolName).Select(m => m.Value).ToList();
        Assert.Equal([1.0, 0.0], gauge.OrderByDescending(v => v));
        Assert.Contains("heed.chat", spans);
        Assert.Contains("heed.rerank", spans);
    }

    private sealed class SlowReranker : IDocumentReranker
    {
        public async Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
            CancellationToken cancellationToken = default)
        {
            await Task.Delay(25, cancellationToken);
            return documents.Select((d, i) => new RankedDocument(i, d, -i)).ToArray();
        }
    }
}
