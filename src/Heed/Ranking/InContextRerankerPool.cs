using System.Collections.Concurrent;
using Heed.Llama;

namespace Heed.Ranking;

/// <summary>
/// Several <see cref="InContextReranker"/>s over one loaded model, each with its own context and
/// attention capture, so that concurrent calls are scored side by side instead of one after
/// another. A call leases a free reranker, runs on it alone and gives it back; further callers
/// wait (cancellably) in arrival order. Scores are the single reranker's: every call runs the
/// same prompt through the same model on a context of its own.
/// </summary>
/// <remarks>
/// On the CPU, contexts that split the cores between them (the default: each gets
/// <c>cores / size</c> threads, at least one) keep both cores busy through the parts of a call
/// that do not use every core (tokenising, short decodes whose threads wait on each other, the
/// per-layer aggregation, the scoring in C#) without running more threads than cores.
/// Rerankers are created on first need, up to <see cref="Size"/>.
/// </remarks>
public sealed class InContextRerankerPool : IDocumentReranker, IDisposable
{
    private readonly IInferenceEngine _model;
    private readonly InContextRerankerOptions _options;
    private readonly SemaphoreSlim _permits;
    private readonly ConcurrentBag<InContextReranker> _idle = [];
    private int _created;
    private volatile bool _disposed;

    /// <summary>Creates a pool of up to <paramref name="size"/> rerankers over <paramref name="model"/>.</summary>
    /// <param name="model">The loaded model that every reranker's context runs.</param>
    /// <param name="size">Most rerankers (contexts) at once, 1 to 256.</param>
    /// <param name="options">Each reranker's options. When <c>ContextOptions.Threads</c> is 0, every
    /// context gets <c>max(1, ProcessorCount / size)</c> threads.</param>
    public InContextRerankerPool(IInferenceEngine model, int size, InContextRerankerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, 256);
        options ??= new InContextRerankerOptions();
        options.Validate();
        if (options.ContextOptions.Threads == 0)
        {
            options = options with
            {
                ContextOptions = options.ContextOptions with { Threads = Math.Max(1, Environment.ProcessorCount / size) },
            };
        }
        _model = model;
        _options = options;
        Size = size;
        _permits = new SemaphoreSlim(size, size);
    }

    /// <summary>Most rerankers alive at once.</summary>
    public int Size { get; }

    /// <summary>Rerankers created so far.</summary>
    public int Created => Volatile.Read(ref _created);

    /// <summary>Rerankers leased out now.</summary>
    public int InUse => Size - _permits.CurrentCount;

    /// <summary>The options each reranker was created with (threads filled in).</summary>
    public InContextRerankerOptions Options => _options;

    /// <inheritdoc />
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    public async Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
        CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        InContextReranker.ValidateInput(query, documents, topK); // bad input fails before any wait
        await _permits.WaitAsync(cancellationToken).ConfigureAwait(false);
        InContextReranker? reranker = null;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_idle.TryTake(out reranker))
            {
                reranker = new InContextReranker(_model, _options);
                Interlocked.Increment(ref _created);
            }
            return await reranker.RerankAsync(query, documents, topK, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (reranker is not null)
            {
                _idle.Add(reranker);
                if (_disposed)
                {
                    DisposeIdle(); // disposed while this call ran
                }
            }
            _permits.Release();
        }
    }

    /// <summary>Frees the idle rerankers; one in use is freed when its call ends.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        DisposeIdle();
    }

    private void DisposeIdle()
    {
        while (_idle.TryTake(out InContextReranker? reranker))
        {
            reranker.Dispose();
        }
    }
}
