using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Heed.AI;

/// <summary>
/// Heed's traces and metrics. Listen to the <see cref="ActivitySource"/> and <see cref="Meter"/>
/// named "Heed" (OpenTelemetry: <c>AddSource("Heed")</c>, <c>AddMeter("Heed")</c>).
/// </summary>
public static class HeedTelemetry
{
    /// <summary>The name of the activity source and of the meter.</summary>
    public const string Name = "Heed";

    /// <summary>Spans: heed.chat, heed.embed, heed.rerank, heed.tool.*.</summary>
    public static ActivitySource ActivitySource { get; } = new(Name, typeof(HeedTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Instruments: heed.generation.tokens_per_second, heed.rerank.duration, heed.pool.waiters.</summary>
    public static Meter Meter { get; } = new(Name, typeof(HeedTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Output tokens per second of each generation (prompt evaluation included).</summary>
    public static Histogram<double> TokensPerSecond { get; } = Meter.CreateHistogram<double>(
        "heed.generation.tokens_per_second", "{token}/s", "Generated tokens per second of one chat request");

    /// <summary>Wall time of one re-ranking call.</summary>
    public static Histogram<double> RerankDuration { get; } = Meter.CreateHistogram<double>(
        "heed.rerank.duration", "s", "Duration of one re-ranking call");

    private static readonly ConcurrentDictionary<long, (string Pool, Func<int> Waiters)> QueueSources = new();
    private static long _nextSource;

    /// <summary>Requests waiting for a context, per pool (the pool tag names it).</summary>
    public static ObservableGauge<int> PoolWaiters { get; } = Meter.CreateObservableGauge(
        "heed.pool.waiters", ObserveWaiters, "{request}", "Requests waiting for a pooled llama.cpp context");

    /// <summary>Reports a pool's waiting requests on the gauge until the returned handle is disposed.</summary>
    /// <param name="pool">The value of the gauge's "pool" tag.</param>
    /// <param name="waiters">Reads the current number of waiters.</param>
    public static IDisposable RegisterQueue(string pool, Func<int> waiters)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        ArgumentNullException.ThrowIfNull(waiters);
        long id = Interlocked.Increment(ref _nextSource);
        QueueSources[id] = (pool, waiters);
        return new Registration(id);
    }

    private static IEnumerable<Measurement<int>> ObserveWaiters()
    {
        foreach ((string pool, Func<int> read) in QueueSources.Values)
        {
            yield return new Measurement<int>(read(), new KeyValuePair<string, object?>("pool", pool));
        }
    }

    private sealed class Registration(long id) : IDisposable
    {
        public void Dispose() => QueueSources.TryRemove(id, out _);
    }
}
