using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Heed.Interop.Llama;

namespace Heed.Llama;

/// <summary>
/// An inference context: a KV cache over a <see cref="LlamaModel"/> and the calls that fill and
/// read it. One caller at a time: a second concurrent call throws
/// <see cref="InvalidOperationException"/> instead of corrupting the cache. Make one context per
/// concurrent caller.
/// </summary>
public sealed unsafe class LlamaContext : IInferenceContext
{
    private readonly SafeLlamaContextHandle _handle;
    private readonly LlamaModel _model;
    private readonly GCHandle _self;
    private readonly SafeLlamaModelHandle _modelHandle;
    private bool _modelRefAdded;
    private int _inUse;
    private CancellationToken _abortToken;

    internal LlamaContext(LlamaModel model, LlamaContextOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        options.Validate(model);
        _model = model;
        Options = options;
        _self = GCHandle.Alloc(this, GCHandleType.Weak);

        LlamaContextParams p = LlamaNative.llama_context_default_params();
        p.n_ctx = (uint)(options.ContextSize > 0 ? options.ContextSize : model.TrainedContextLength);
        p.n_batch = (uint)options.BatchSize;
        p.n_ubatch = (uint)options.MicroBatchSize;
        p.n_seq_max = (uint)options.SequenceCount;
        p.kv_unified = options.UnifiedKvCache;
        p.n_threads = p.n_threads_batch = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        p.flash_attn_type = (int)options.FlashAttention;
        p.embeddings = options.Embeddings;
        p.pooling_type = options.Embeddings ? (int)options.Pooling : -1;
        p.type_k = (int)options.KeyCacheType;
        p.type_v = (int)options.ValueCacheType;
        p.cb_eval = options.EvalCallback.Callback;
        p.cb_eval_user_data = options.EvalCallback.UserData;
        p.abort_callback = &OnAbort;
        p.abort_callback_data = GCHandle.ToIntPtr(_self);

        // The model's weights must outlive this context even if the model is disposed first.
        _modelHandle = model.Handle;
        _modelHandle.DangerousAddRef(ref _modelRefAdded);
        SafeLlamaModelHandle modelHandle = _modelHandle;
        _handle = LlamaBackend.CaptureErrors(() => LlamaNative.llama_init_from_model(modelHandle, p), out IReadOnlyList<string> errors);
        if (_handle.IsInvalid)
        {
            _handle.Dispose();
            ReleaseModel();
            _self.Free();
            throw new HeedNativeException($"llama.cpp could not create a context of {p.n_ctx} tokens: " +
                                          (errors.Count > 0 ? string.Join(" ", errors) : "out of memory or invalid options") +
                                          ". Try a smaller ContextSize.");
        }
        ContextSize = (int)LlamaNative.llama_n_ctx(_handle);
        BatchSize = (int)LlamaNative.llama_n_batch(_handle);
    }

    /// <summary>The model this context runs.</summary>
    public LlamaModel Model => _model;

    /// <summary>The options it was created with.</summary>
    public LlamaContextOptions Options { get; }

    /// <summary>Tokens the KV cache holds.</summary>
    public int ContextSize { get; }

    /// <summary>Most tokens per native decode call.</summary>
    public int BatchSize { get; }

    /// <summary>The position the next token of a sequence takes (0 when the sequence is empty).</summary>
    public int NextPosition(int sequence = 0)
    {
        ValidateSequence(sequence);
        return LlamaNative.llama_memory_seq_pos_max(Memory, sequence) + 1;
    }

    /// <summary>
    /// Runs tokens through the model, appending them to a sequence's cache at its next position.
    /// Logits are kept for the last token, or for every token with <paramref name="allLogits"/>.
    /// </summary>
    /// <exception cref="ArgumentException">No tokens, an id outside the vocabulary, or more tokens than the context has room for.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the tokens of this call are removed from the cache again.</exception>
    public void Evaluate(ReadOnlySpan<int> tokens, int sequence = 0, bool allLogits = false, CancellationToken cancellationToken = default)
    {
        using var _ = Enter(cancellationToken);
        EvaluateCore(tokens, sequence, allLogits);
    }

    /// <summary>
    /// Runs tokens through the model into a sequence at an explicit first position, which may leave
    /// a gap after the sequence's last token but not go back before it (block ICR places a document
    /// at the position it takes in a prompt, after a shared prefix).
    /// </summary>
    /// <exception cref="ArgumentException">No tokens, a bad id, a position before the sequence's end, or past the context.</exception>
    public void EvaluateAt(ReadOnlySpan<int> tokens, int sequence, int position, CancellationToken cancellationToken = default)
    {
        ValidateSequence(sequence);
        int next = NextPositionUnchecked(sequence);
        if (position < next)
        {
            throw new ArgumentOutOfRangeException(nameof(position), position,
                $"Sequence {sequence} already holds positions up to {next - 1}; decode at {next} or later, or remove tokens first.");
        }
        using var _ = Enter(cancellationToken);
        EvaluateCore(tokens, sequence, false, position);
    }

    private void EvaluateCore(ReadOnlySpan<int> tokens, int sequence, bool allLogits, int position = -1)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("There are no tokens to evaluate; pass at least one token.", nameof(tokens));
        }
        ValidateSequence(sequence);
        _model.Tokenizer.ValidateTokens(tokens);
        int start = position >= 0 ? position : LlamaNative.llama_memory_seq_pos_max(Memory, sequence) + 1;
        if (start + tokens.Length > ContextSize)
        {
            throw new ArgumentException(
                $"{tokens.Length} tokens do not fit: the context holds {ContextSize} tokens and {start} are in use. " +
                "Shorten the input or create the context with a larger ContextSize.", nameof(tokens));
        }

        int chunk = Math.Min(BatchSize, tokens.Length);
        int[] positions = new int[chunk];
        int[] seqCounts = new int[chunk];
        sbyte[] outputs = new sbyte[chunk];
        int sequenceId = sequence;
        IntPtr[] seqIds = new IntPtr[chunk];
        Array.Fill(seqCounts, 1);
        try
        {
            for (int offset = 0; offset < tokens.Length; offset += chunk)
            {
                int n = Math.Min(chunk, tokens.Length - offset);
                for (int i = 0; i < n; i++)
                {
                    positions[i] = start + offset + i;
                    outputs[i] = (sbyte)(allLogits || offset + i == tokens.Length - 1 ? 1 : 0);
                }
                fixed (int* t = tokens.Slice(offset, n))
                fixed (int* pos = positions)
                fixed (int* counts = seqCounts)
                fixed (sbyte* logits = outputs)
                fixed (IntPtr* ids = seqIds)
                {
                    for (int i = 0; i < n; i++)
                    {
                        ids[i] = (IntPtr)(&sequenceId);
                    }
                    var batch = new LlamaBatch
                    {
                        n_tokens = n, token = t, pos = pos, n_seq_id = counts, seq_id = (int**)ids, logits = logits,
                    };
                    int status = LlamaNative.llama_decode(_handle, batch);
                    ThrowIfDecodeFailed(status);
                }
            }
        }
        catch
        {
            // Leave the cache as it was before this call.
            LlamaNative.llama_memory_seq_rm(Memory, sequence, start, -1);
            throw;
        }
        LastBatchOutputs = allLogits ? tokens.Length % chunk == 0 ? chunk : tokens.Length % chunk : 1;
    }

    private void ThrowIfDecodeFailed(int status)
    {
        switch (status)
        {
            case 0:
                return;
            case 1:
                throw new InvalidOperationException("The KV cache has no room for this batch; remove tokens or use a larger ContextSize.");
            case 2:
                _abortToken.ThrowIfCancellationRequested();
                throw new OperationCanceledException("Decoding was aborted.");
            default:
                throw new HeedNativeException($"llama_decode failed with status {status}.");
        }
    }

    int IInferenceContext.NextPosition() => NextPosition();

    void IInferenceContext.Evaluate(ReadOnlySpan<int> tokens, CancellationToken cancellationToken) => Evaluate(tokens, 0, false, cancellationToken);

    void IInferenceContext.RemoveTokens(int start, int end) => RemoveTokens(0, start, end);

    int IInferenceContext.SequenceCount => Options.SequenceCount;

    /// <summary>Number of logit rows the last evaluated chunk produced (for <see cref="GetLogits"/>).</summary>
    public int LastBatchOutputs { get; private set; }

    /// <summary>
    /// A copy of the logits (one per vocabulary entry) of an output row of the last evaluated chunk;
    /// -1 is the last row.
    /// </summary>
    public float[] GetLogits(int row = -1)
    {
        using var _ = Enter(default);
        float* logits = LlamaNative.llama_get_logits_ith(_handle, row);
        if (logits == null)
        {
            throw new InvalidOperationException($"No logits for row {row}: evaluate tokens first (with allLogits for rows other than the last).");
        }
        return new ReadOnlySpan<float>(logits, _model.VocabularySize).ToArray();
    }

    /// <summary>
    /// The pooled embedding of a text (requires <see cref="LlamaContextOptions.Embeddings"/>).
    /// Uses sequence 0, which is cleared before and after.
    /// </summary>
    public float[] GetEmbeddings(string text, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        if (!Options.Embeddings)
        {
            throw new InvalidOperationException("This context was created without Embeddings = true.");
        }
        using var _ = Enter(cancellationToken);
        int[] tokens = _model.Tokenizer.Tokenize(text);
        LlamaNative.llama_memory_seq_rm(Memory, 0, -1, -1);
        try
        {
            EvaluateCore(tokens, 0, allLogits: Options.Pooling == EmbeddingPooling.None);
            float* embedding = Options.Pooling == EmbeddingPooling.None
                ? LlamaNative.llama_get_embeddings_ith(_handle, -1)
                : LlamaNative.llama_get_embeddings_seq(_handle, 0);
            if (embedding == null)
            {
                throw new HeedNativeException("llama.cpp returned no embedding for this text.");
            }
            return new ReadOnlySpan<float>(embedding, _model.EmbeddingSize).ToArray();
        }
        finally
        {
            LlamaNative.llama_memory_seq_rm(Memory, 0, -1, -1);
        }
    }

    /// <summary>
    /// Streams the continuation of a prompt as text. Generation starts from an empty sequence 0
    /// (the cache is cleared first). Pieces are whole UTF-8 characters.
    /// </summary>
    public async IAsyncEnumerable<string> GenerateAsync(string prompt, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Length == 0)
        {
            throw new ArgumentException("The prompt is empty; give the model some text to continue.", nameof(prompt));
        }
        options ??= new GenerationOptions();
        options.Validate();
        int[] tokens = _model.Tokenizer.Tokenize(prompt);
        IAsyncEnumerable<int> generated = GenerateTokensAsync(tokens, options, cancellationToken);
        await foreach (string piece in StopSequenceFilter.TextAsync(generated, t => _model.Tokenizer.TokenToBytes(t), options.StopSequences)
                           .ConfigureAwait(false))
        {
            yield return piece;
        }
    }

    /// <summary>
    /// Streams the token ids that continue a tokenized prompt (BOS included if the caller wants it).
    /// Starts from an empty sequence 0; ends at the end-of-generation token or MaxTokens.
    /// </summary>
    public async IAsyncEnumerable<int> GenerateTokensAsync(int[] promptTokens, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options = GenerationOptions.ForPrompt(options, promptTokens, ContextSize);
        using var guard = Enter(cancellationToken);
        using var sampler = new TokenSampler(options, _model);
        LlamaNative.llama_memory_seq_rm(Memory, 0, -1, -1);
        await Task.Run(() => EvaluateCore(promptTokens, 0, false), cancellationToken).ConfigureAwait(false);
        int[] next = new int[1];
        for (int produced = 0; produced < options.MaxTokens; produced++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int token = sampler.Sample(_handle);
            if (_model.Tokenizer.IsEndOfGeneration(token))
            {
                yield break;
            }
            yield return token;
            if (produced + 1 == options.MaxTokens || NextPositionUnchecked(0) >= ContextSize)
            {
                yield break;
            }
            next[0] = token;
            await Task.Run(() => EvaluateCore(next, 0, false), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Removes positions [start, end) of a sequence from the cache (end -1: to the end).</summary>
    public void RemoveTokens(int sequence, int start, int end = -1)
    {
        ValidateSequence(sequence);
        ValidateRange(start, end);
        using var _ = Enter(default);
        if (!LlamaNative.llama_memory_seq_rm(Memory, sequence, start, end))
        {
            throw new InvalidOperationException("llama.cpp could not remove that range (a partial removal is not possible for this model's memory).");
        }
    }

    /// <summary>Makes positions [start, end) of one sequence also belong to another (shares cache cells).</summary>
    public void CopySequence(int source, int destination, int start = 0, int end = -1)
    {
        ValidateSequence(source);
        ValidateSequence(destination);
        ValidateRange(start, end);
        using var _ = Enter(default);
        LlamaNative.llama_memory_seq_cp(Memory, source, destination, start, end);
    }

    /// <summary>Removes every sequence but this one.</summary>
    public void KeepSequence(int sequence)
    {
        ValidateSequence(sequence);
        using var _ = Enter(default);
        // llama_memory_seq_keep leaves other sequences' streams alone when the cache is not
        // unified; removing each other sequence means the same thing in every layout.
        for (int other = 0; other < Options.SequenceCount; other++)
        {
            if (other != sequence)
            {
                LlamaNative.llama_memory_seq_rm(Memory, other, -1, -1);
            }
        }
    }

    /// <summary>Adds delta to the positions [start, end) of a sequence (RoPE is re-applied by llama.cpp).</summary>
    public void ShiftPositions(int sequence, int start, int end, int delta)
    {
        ValidateSequence(sequence);
        ValidateRange(start, end);
        using var _ = Enter(default);
        LlamaNative.llama_memory_seq_add(Memory, sequence, start, end, delta);
    }

    /// <summary>Empties the whole cache.</summary>
    public void Clear()
    {
        using var _ = Enter(default);
        LlamaNative.llama_memory_clear(Memory, true);
    }

    /// <summary>The whole context state (cache, logits) as bytes.</summary>
    public byte[] SaveState()
    {
        using var _ = Enter(default);
        byte[] state = new byte[(int)LlamaNative.llama_state_get_size(_handle)];
        fixed (byte* p = state)
        {
            nuint written = LlamaNative.llama_state_get_data(_handle, p, (nuint)state.Length);
            return state.AsSpan(0, (int)written).ToArray();
        }
    }

    /// <summary>Restores a state from <see cref="SaveState"/> of a context over the same model.</summary>
    public void LoadState(byte[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Length == 0)
        {
            throw new ArgumentException("The state is empty.", nameof(state));
        }
        using var _ = Enter(default);
        fixed (byte* p = state)
        {
            if (LlamaNative.llama_state_set_data(_handle, p, (nuint)state.Length) == 0)
            {
                throw new ArgumentException("llama.cpp rejected this state: it comes from another model or context size.", nameof(state));
            }
        }
    }

    /// <summary>One sequence's cache as bytes.</summary>
    public byte[] SaveSequenceState(int sequence = 0)
    {
        ValidateSequence(sequence);
        using var _ = Enter(default);
        byte[] state = new byte[(int)LlamaNative.llama_state_seq_get_size(_handle, sequence)];
        fixed (byte* p = state)
        {
            nuint written = LlamaNative.llama_state_seq_get_data(_handle, p, (nuint)state.Length, sequence);
            return state.AsSpan(0, (int)written).ToArray();
        }
    }

    /// <summary>Loads a sequence state from <see cref="SaveSequenceState"/> into a sequence (replacing it).</summary>
    public void LoadSequenceState(byte[] state, int sequence = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        ValidateSequence(sequence);
        if (state.Length == 0)
        {
            throw new ArgumentException("The state is empty.", nameof(state));
        }
        using var _ = Enter(default);
        LlamaNative.llama_memory_seq_rm(Memory, sequence, -1, -1);
        fixed (byte* p = state)
        {
            if (LlamaNative.llama_state_seq_set_data(_handle, p, (nuint)state.Length, sequence) == 0)
            {
                throw new ArgumentException("llama.cpp rejected this sequence state: it comes from another model, or the cache is too small.", nameof(state));
            }
        }
    }

    internal SafeLlamaContextHandle Handle => _handle;

    private IntPtr Memory => LlamaNative.llama_get_memory(_handle);

    private int NextPositionUnchecked(int sequence) => LlamaNative.llama_memory_seq_pos_max(Memory, sequence) + 1;

    private void ValidateSequence(int sequence)
    {
        if ((uint)sequence >= (uint)Options.SequenceCount)
        {
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"Sequence ids must be in [0, {Options.SequenceCount}); set SequenceCount for more.");
        }
    }

    private static void ValidateRange(int start, int end)
    {
        if (start < 0 || (end >= 0 && end < start) || end < -1)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, {end}) is not a range of positions (start >= 0, end >= start or -1).");
        }
    }

    private ExclusiveUse Enter(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (Interlocked.CompareExchange(ref _inUse, 1, 0) != 0)
        {
            throw new InvalidOperationException(
                "This LlamaContext is in use by another caller. A context serves one caller at a time; create one per concurrent caller.");
        }
        _abortToken = cancellationToken;
        return new ExclusiveUse(this);
    }

    private readonly struct ExclusiveUse(LlamaContext owner) : IDisposable
    {
        public void Dispose()
        {
            owner._abortToken = default;
            Volatile.Write(ref owner._inUse, 0);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte OnAbort(IntPtr userData)
    {
        try
        {
            return GCHandle.FromIntPtr(userData).Target is LlamaContext context && context._abortToken.IsCancellationRequested ? (byte)1 : (byte)0;
        }
        catch
        {
            return 0;
        }
    }

    private void ReleaseModel()
    {
        if (_modelRefAdded)
        {
            _modelRefAdded = false;
            _modelHandle.DangerousRelease();
        }
    }

    /// <summary>Frees the cache. A native call in flight finishes first (the handle is reference counted).</summary>
    public void Dispose()
    {
        if (_handle.IsClosed)
        {
            return;
        }
        _handle.Dispose();
        ReleaseModel();
        _self.Free();
    }
}
