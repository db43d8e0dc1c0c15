using System.Diagnostics.CodeAnalysis;
using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Fallback;
using Polly.RateLimiting;
using Polly.Retry;
using Polly.Timeout;
using Heed.Storage;

namespace Heed.Hosting;

/// <summary>
/// Polly pipelines around model and store work:
/// a request runs under a timeout and a concurrency limiter (bounded queue), and falls back from
/// the GPU to the CPU when the GPU path throws <see cref="HeedNativeException"/> or
/// <see cref="OutOfMemoryException"/>; store operations are retried with exponential backoff on
/// transient <see cref="IOException"/>s.
/// </summary>
public sealed class HeedResilience : IDisposable
{
    private static readonly ResiliencePropertyKey<object> CpuPathKey = new("heed.cpu-path");
    private static readonly ResiliencePropertyKey<Func<bool>> MayFallBackKey = new("heed.may-fall-back");

    private readonly ILogger _logger;
    private readonly ConcurrencyLimiter _limiter;
    private readonly ResiliencePipeline _requests;
    private readonly ConcurrentDictionary<Type, object> _fallbacks = new();

    /// <summary>Builds the pipelines.</summary>
    /// <param name="options">Limits and retries; null for the defaults.</param>
    /// <param name="logger">Receives timeouts, rejections, fallbacks and retries.</param>
    /// <param name="timeProvider">Clock for timeouts and retry delays (tests pass a fake one); null for the system clock.</param>
    public HeedResilience(HeedResilienceOptions? options = null, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        options ??= new HeedResilienceOptions();
        options.Validate();
        Options = options;
        _logger = logger ?? NullLogger.Instance;
        TimeProvider time = timeProvider ?? TimeProvider.System;
        _limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = options.MaxConcurrentRequests,
            QueueLimit = options.MaxQueuedRequests,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        _requests = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddTimeout(new TimeoutStrategyOptions
            {
                Timeout = options.RequestTimeout,
                OnTimeout = args =>
                {
                    _logger.LogWarning("A Heed request ran past its timeout of {Timeout}.", args.Timeout);
                    return default;
                },
            })
            .AddRateLimiter(new RateLimiterStrategyOptions
            {
                RateLimiter = args => _limiter.AcquireAsync(1, args.Context.CancellationToken),
                OnRejected = _ =>
                {
                    _logger.LogWarning("A Heed request was rejected: {Queued} requests already wait (MaxQueuedRequests).", QueuedRequests);
                    return default;
                },
            })
            .Build();
        StorePipeline = options.StoreRetryCount == 0 ? ResiliencePipeline.Empty : new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<IOException>(IsTransientIo),
                MaxRetryAttempts = options.StoreRetryCount,
                Delay = options.StoreRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                OnRetry = args =>
                {
                    _logger.LogWarning(args.Outcome.Exception, "Store I/O failed; retry {Attempt} in {Delay}.", args.AttemptNumber + 1, args.RetryDelay);
                    return default;
                },
            })
            .Build();
    }

    /// <summary>The options in force.</summary>
    public HeedResilienceOptions Options { get; }

    /// <summary>Retries store I/O (file-backed index, document reads) on transient <see cref="IOException"/>s.</summary>
    public ResiliencePipeline StorePipeline { get; }

    /// <summary>Requests waiting for a turn in the concurrency limiter.</summary>
    public int QueuedRequests => (int)(_limiter.GetStatistics()?.CurrentQueuedCount ?? 0);

    /// <summary>Whether an exception means the GPU path failed (native failure or out of memory), so the CPU may do the work instead.</summary>
    public static bool IsGpuFailure(Exception exception) => exception is HeedNativeException or OutOfMemoryException;

    // Missing files are not transient: retrying them only delays the error the caller must see.
    private static bool IsTransientIo(IOException exception) =>
        exception is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException or EndOfStreamException
            or HeedIndexCorruptException);

    /// <summary>
    /// Runs one request: under the timeout and the concurrency limiter, on <paramref name="primary"/>,
    /// and on <paramref name="cpuFallback"/> when the primary path fails on the GPU.
    /// </summary>
    /// <param name="primary">The work on the primary (GPU) model.</param>
    /// <param name="cpuFallback">The same work on a CPU-only model; null when there is no fallback.</param>
    /// <param name="mayFallBack">Asked after a GPU failure; false keeps the failure (e.g. a stream already sent output).</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="TimeoutRejectedException">The request ran past <see cref="HeedResilienceOptions.RequestTimeout"/>.</exception>
    /// <exception cref="RateLimiterRejectedException">Too many requests already wait.</exception>
    public async ValueTask<T> ExecuteRequestAsync<T>(Func<CancellationToken, ValueTask<T>> primary,
        Func<CancellationToken, ValueTask<T>>? cpuFallback, CancellationToken cancellationToken = default, Func<bool>? mayFallBack = null)
    {
        ArgumentNullException.ThrowIfNull(primary);
        return await _requests.ExecuteAsync(async token =>
        {
            if (cpuFallback is null)
            {
                return await primary(token).ConfigureAwait(false);
            }
            var pipeline = (ResiliencePipeline<T>)_fallbacks.GetOrAdd(typeof(T), _ => BuildFallback<T>());
            ResilienceContext context = ResilienceContextPool.Shared.Get(token);
            try
            {
                context.Properties.Set(CpuPathKey, cpuFallback);
                context.Properties.Set(MayFallBackKey, mayFallBack ?? (() => true));
                return await pipeline.ExecuteAsync(static (ctx, work) => work(ctx.CancellationToken), context, primary).ConfigureAwait(false);
            }
            finally
            {
                ResilienceContextPool.Shared.Return(context);
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs a store operation with retries on transient <see cref="IOException"/>s.</summary>
    public ValueTask<T> ExecuteStoreAsync<T>(Func<CancellationToken, ValueTask<T>> operation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return StorePipeline.ExecuteAsync(operation, cancellationToken);
    }

    // Polly marks TResult for the reflection-based validation of its options object. This fallback
    // never creates or inspects a T (it returns what the CPU path produced), and the options'
    // members are kept because this method sets them.
    [UnconditionalSuppressMessage("Trimming", "IL2091", Justification = "See the comment above.")]
    private ResiliencePipeline<T> BuildFallback<T>() => new ResiliencePipelineBuilder<T>()
        .AddFallback(new FallbackStrategyOptions<T>
        {
            ShouldHandle = args => ValueTask.FromResult(
                args.Outcome.Exception is { } e && IsGpuFailure(e) &&
                args.Context.Properties.TryGetValue(MayFallBackKey, out Func<bool>? may) && may()),
            FallbackAction = async args =>
            {
                var cpu = (Func<CancellationToken, ValueTask<T>>)args.Context.Properties.GetValue(CpuPathKey, null!);
                return Outcome.FromResult(await cpu(args.Context.CancellationToken).ConfigureAwait(false));
            },
            OnFallback = args =>
            {
                _logger.LogWarning(args.Outcome.Exception, "The GPU path failed; running the request on the CPU instead.");
                return default;
            },
        })
        .Build();

    /// <summary>Frees the concurrency limiter.</summary>
    public void Dispose() => _limiter.Dispose();
}
