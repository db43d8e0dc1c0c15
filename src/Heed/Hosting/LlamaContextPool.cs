using System.Collections.Concurrent;
using Heed.AI;
using Heed.Llama;

namespace Heed.Hosting;

/// <summary>
/// A bounded pool of <see cref="LlamaContext"/>s over one model. A request leases a context,
/// uses it alone, and returns it; returned contexts are cleared and reused. Contexts are created
/// on first need, up to <see cref="Size"/>; further callers wait (cancellably) for a return.
/// </summary>
public sealed class LlamaContextPool : IDisposable
{
    private readonly Func<CancellationToken, ValueTask<LlamaContext>> _factory;
    private readonly SemaphoreSlim _permits;
    private readonly ConcurrentBag<LlamaContext> _idle = [];
    private readonly IDisposable _gauge;
    private int _waiters;
    private int _created;
    private volatile bool _disposed;

    /// <summary>Creates a pool whose contexts the factory makes (it may load the model first).</summary>
    /// <param name="factory">Makes one context; called at most <paramref name="size"/> times while contexts are healthy.</param>
    /// <param name="size">Most contexts alive at once, 1 to 256.</param>
    /// <param name="name">Names the pool in telemetry ("chat", "embedding", ...).</param>
    public LlamaContextPool(Func<CancellationToken, ValueTask<LlamaContext>> factory, int size, string name = "default")
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, 256);
        ArgumentException.ThrowIfNullOrEmpty(name);
        _factory = factory;
        Size = size;
        Name = name;
        _permits = new SemaphoreSlim(size, size);
        _gauge = HeedTelemetry.RegisterQueue(name, () => Volatile.Read(ref _waiters));
    }

    /// <summary>A pool of contexts over a loaded model.</summary>
    public LlamaContextPool(LlamaModel model, LlamaContextOptions options, int size, string name = "default")
        : this(_ => ValueTask.FromResult((model ?? throw new ArgumentNullException(nameof(model))).CreateContext(options)), size, name)
    {
        ArgumentNullException.ThrowIfNull(options);
    }

    /// <summary>Most contexts alive at once.</summary>
    public int Size { get; }

    /// <summary>The pool's name in telemetry.</summary>
    public string Name { get; }

    /// <summary>Callers waiting for a context now.</summary>
    public int Waiters => Volatile.Read(ref _waiters);

    /// <summary>Contexts created so far (a discarded context is replaced by a new one).</summary>
    public int Created => Volatile.Read(ref _created);

    /// <summary>Contexts leased out now.</summary>
    public int InUse => Size - _permits.CurrentCount;

    /// <summary>Waits for a free context; dispose the lease to give it back.</summary>
    /// <exception cref="OperationCanceledException">Cancelled while waiting; nothing is leased.</exception>
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    public async ValueTask<LlamaContextLease> RentAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Interlocked.Increment(ref _waiters);
        try
        {
            await _permits.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiters);
        }
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_idle.TryTake(out LlamaContext? context))
            {
                context = await _factory(cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _created);
            }
            return new LlamaContextLease(this, context);
        }
        catch
        {
            _permits.Release();
            throw;
        }
    }

    internal void Return(LlamaContext context, bool discard)
    {
        try
        {
            if (discard || _disposed)
            {
                context.Dispose();
                return;
            }
            try
            {
                context.Clear();
                _idle.Add(context);
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or HeedNativeException)
            {
                // A context that cannot be cleared is not reused; the next lease makes a new one.
                context.Dispose();
            }
        }
        finally
        {
            _permits.Release();
        }
    }

    /// <summary>Frees the idle contexts; leased ones are freed when their lease ends.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _gauge.Dispose();
        while (_idle.TryTake(out LlamaContext? context))
        {
            context.Dispose();
        }
    }
}
