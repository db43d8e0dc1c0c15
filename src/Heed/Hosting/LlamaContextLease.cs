using Heed.Llama;

namespace Heed.Hosting;

/// <summary>One context lent by a <see cref="LlamaContextPool"/>; dispose it to give the context back.</summary>
public sealed class LlamaContextLease : IDisposable
{
    private LlamaContextPool? _pool;
    private bool _discard;

    internal LlamaContextLease(LlamaContextPool pool, LlamaContext context)
    {
        _pool = pool;
        Context = context;
    }

    /// <summary>The context, for this lease's holder alone.</summary>
    public LlamaContext Context { get; }

    /// <summary>Frees the context instead of reusing it (after a native failure left it in doubt).</summary>
    public void Discard() => _discard = true;

    /// <summary>Returns the context to the pool (cleared), or frees it after <see cref="Discard"/>.</summary>
    public void Dispose() => Interlocked.Exchange(ref _pool, null)?.Return(Context, _discard);
}
