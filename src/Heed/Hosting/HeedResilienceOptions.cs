namespace Heed.Hosting;

/// <summary>Limits and retries of <see cref="HeedResilience"/>.</summary>
public sealed record HeedResilienceOptions
{
    /// <summary>Longest one request may take, waiting for a context included.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Requests running at once (normally the context pool's size).</summary>
    public int MaxConcurrentRequests { get; init; } = 2;

    /// <summary>Requests that may wait for a turn; more are rejected at once.</summary>
    public int MaxQueuedRequests { get; init; } = 1000;

    /// <summary>Retries of a store operation that failed with a transient <see cref="IOException"/>.</summary>
    public int StoreRetryCount { get; init; } = 3;

    /// <summary>Delay before the first store retry; it doubles (with jitter) for each next one.</summary>
    public TimeSpan StoreRetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    internal void Validate()
    {
        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "RequestTimeout must be positive.");
        }
        if (MaxConcurrentRequests < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrentRequests), MaxConcurrentRequests, "MaxConcurrentRequests must be at least 1.");
        }
        if (MaxQueuedRequests < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedRequests), MaxQueuedRequests, "MaxQueuedRequests must be 0 or more.");
        }
        if (StoreRetryCount < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(StoreRetryCount), StoreRetryCount, "StoreRetryCount must be 0 or more.");
        }
        if (StoreRetryDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(StoreRetryDelay), StoreRetryDelay, "StoreRetryDelay must not be negative.");
        }
    }
}
