using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Heed.AI;
using Heed.Llama;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Heed.Hosting;

/// <summary>
/// Runs model work on pooled contexts: one request is one lease, under <see cref="HeedResilience"/>'s
/// timeout and concurrency limit, moved to a CPU-only pool when the GPU fails.
/// </summary>
public sealed class LlamaInference : IDisposable
{
    private readonly LlamaContextPool _primary;
    private readonly Func<CancellationToken, ValueTask<LlamaContextPool>>? _cpuFallback;
    private readonly HeedResilience _resilience;
    private readonly ILogger _logger;
    private readonly IDisposable _gauge;
    private readonly IDisposable[] _owned;

    /// <summary>Runs work on <paramref name="primary"/>, and on the CPU pool when the primary's GPU fails.</summary>
    /// <param name="primary">Contexts of the primary (GPU, if any) model.</param>
    /// <param name="cpuFallback">Gives the pool of a CPU-only model (loaded on first need); null for no fallback.</param>
    /// <param name="resilience">Timeout, concurrency limiter and fallback pipelines.</param>
    /// <param name="logger">Receives fallbacks and failures.</param>
    public LlamaInference(LlamaContextPool primary, Func<CancellationToken, ValueTask<LlamaContextPool>>? cpuFallback,
        HeedResilience resilience, ILogger? logger = null)
        : this(primary, cpuFallback, resilience, logger, owned: [])
    {
    }

    internal LlamaInference(LlamaContextPool primary, Func<CancellationToken, ValueTask<LlamaContextPool>>? cpuFallback,
        HeedResilience resilience, ILogger? logger, IDisposable[] owned)
    {
        ArgumentNullException.ThrowIfNull(primary);
        ArgumentNullException.ThrowIfNull(resilience);
        _primary = primary;
        _cpuFallback = cpuFallback;
        _resilience = resilience;
        _logger = logger ?? NullLogger.Instance;
        _owned = owned;
        _gauge = HeedTelemetry.RegisterQueue(primary.Name + ".limiter", () => _resilience.QueuedRequests);
    }

    /// <summary>
    /// Inference over a loaded model with <paramref name="poolSize"/> contexts, default limits and no
    /// CPU fallback; disposing it frees the contexts (not the model).
    /// </summary>
    public static LlamaInference ForModel(LlamaModel model, LlamaContextOptions? contextOptions = null, int poolSize = 1,
        string name = "default", ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var pool = new LlamaContextPool(model, contextOptions ?? new LlamaContextOptions(), poolSize, name);
        var resilience = new HeedResilience(new HeedResilienceOptions { MaxConcurrentRequests = poolSize }, logger);
        return new LlamaInference(pool, null, resilience, logger, owned: [pool, resilience]);
    }

    /// <summary>The pool of the primary model.</summary>
    public LlamaContextPool Pool => _primary;

    /// <summary>Requests waiting now: in the concurrency limiter's queue and for a context.</summary>
    public int QueuedRequests => _resilience.QueuedRequests + _primary.Waiters;

    /// <summary>Runs <paramref name="work"/> on a leased context and returns its result.</summary>
    public async Task<T> RunAsync<T>(Func<LlamaContext, CancellationToken, Task<T>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return await RunCoreAsync(work, mayFallBack: null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Streams the items <paramref name="work"/> produces on a leased context; the lease is held
    /// until the stream ends or the caller stops reading. The CPU fallback applies only before the
    /// first item.
    /// </summary>
    public async IAsyncEnumerable<T> StreamAsync<T>(Func<LlamaContext, CancellationToken, IAsyncEnumerable<T>> work,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateBounded<T>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });
        bool started = false;
        Task producer = Task.Run(async () =>
        {
            try
            {
                await RunCoreAsync(async (context, token) =>
                {
                    await foreach (T item in work(context, token).WithCancellation(token).ConfigureAwait(false))
                    {
                        Volatile.Write(ref started, true);
                        await channel.Writer.WriteAsync(item, token).ConfigureAwait(false);
                    }
                    return true;
                }, () => !Volatile.Read(ref started), stop.Token).ConfigureAwait(false);
                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        }, CancellationToken.None);
        try
        {
            await foreach (T item in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return item;
            }
        }
        finally
        {
            // The caller stopped early or failed: end the producer and wait, so the lease is back.
            await stop.CancelAsync().ConfigureAwait(false);
            await producer.ConfigureAwait(false);
        }
    }

    private async Task<T> RunCoreAsync<T>(Func<LlamaContext, CancellationToken, Task<T>> work, Func<bool>? mayFallBack,
        CancellationToken cancellationToken)
    {
        Func<CancellationToken, ValueTask<T>>? cpu = _cpuFallback is null
            ? null
            : async token => await RunOnAsync(await _cpuFallback(token).ConfigureAwait(false), work, token).ConfigureAwait(false);
        return await _resilience.ExecuteRequestAsync(token => RunOnAsync(_primary, work, token), cpu, cancellationToken, mayFallBack)
            .ConfigureAwait(false);
    }

    private async ValueTask<T> RunOnAsync<T>(LlamaContextPool pool, Func<LlamaContext, CancellationToken, Task<T>> work,
        CancellationToken cancellationToken)
    {
        using LlamaContextLease lease = await pool.RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await work(lease.Context, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (HeedResilience.IsGpuFailure(e))
        {
            // The context's state is unknown after a native failure: free it rather than reuse it.
            lease.Discard();
            _logger.LogWarning(e, "Model work failed on a context of pool {Pool}.", pool.Name);
            throw;
        }
    }

    /// <summary>Stops reporting the queue; frees the pools and limiter it made (<see cref="ForModel"/>, AddHeed).</summary>
    public void Dispose()
    {
        _gauge.Dispose();
        foreach (IDisposable part in _owned)
        {
            part.Dispose();
        }
    }
}
