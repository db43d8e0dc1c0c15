using Heed.Interop.Native;
using Heed.Llama;

namespace Heed.Attention;

/// <summary>
/// A context whose decodes copy the post-RoPE queries and keys of chosen layers into libheed,
/// and the fused aggregation over them: how much attention query tokens pay to each key token.
/// Owns its context (the capture hook is part of the context), made by any
/// <see cref="IInferenceEngine"/>: Heed's <see cref="LlamaModel"/> or another runtime's model.
/// One caller at a time; rows are kept for one sequence at a time (decodes into other sequences, as
/// block ICR makes, go through <see cref="EvaluateAt"/> and their key rows through <see cref="GetKeys"/>).
/// </summary>
public sealed unsafe class AttentionCapture : IDisposable
{
    /// <summary>Architectures whose llama.cpp graph names post-RoPE Q and K "Qcur-L" and "Kcur-L".</summary>
    public static IReadOnlySet<string> SupportedArchitectures { get; } =
        new HashSet<string>(StringComparer.Ordinal) { "llama", "qwen2", "qwen3", "mistral3", "granite" };

    private readonly SafeHeedCaptureHandle _session;
    private readonly int[] _layers;
    private readonly bool _halfPrecision;
    private bool _verified;

    /// <summary>Creates a capture over a new context of <paramref name="model"/>.</summary>
    /// <param name="model">A model of a supported architecture, loaded by Heed or by another engine.</param>
    /// <param name="layers">Layers to capture (0-based); null for all.</param>
    /// <param name="contextOptions">The context; its flash attention setting is kept.</param>
    /// <param name="options">What to store.</param>
    /// <exception cref="NotSupportedException">The model's architecture is not supported.</exception>
    public AttentionCapture(IInferenceEngine model, IReadOnlyList<int>? layers = null, LlamaContextOptions? contextOptions = null,
        AttentionCaptureOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new AttentionCaptureOptions();
        if (!SupportedArchitectures.Contains(model.Architecture))
        {
            throw new NotSupportedException(
                $"attention capture is not supported for architecture {model.Architecture}: Heed reads the 'Qcur-L'/'Kcur-L' " +
                $"tensors that llama.cpp's graphs of {string.Join(", ", SupportedArchitectures.Order())} name that way.");
        }
        // Attention temperature tuning (mistral3) multiplies Q after the graph names it "Qcur", by a factor
        // that grows with position: the captured rows would no longer be the ones the softmax saw.
        if (float.TryParse(model.GetMetadata($"{model.Architecture}.attention.temperature_scale"),
                System.Globalization.CultureInfo.InvariantCulture, out float temperatureScale) && temperatureScale != 0f)
        {
            throw new NotSupportedException(
                $"attention capture is not supported for this {model.Architecture} model: it scales queries by position " +
                "(attention temperature tuning) after the point where Heed reads them, so its scores would be wrong.");
        }
        _layers = (layers ?? Enumerable.Range(0, model.LayerCount).ToArray()).ToArray();
        if (_layers.Length == 0)
        {
            throw new ArgumentException("Capture at least one layer.", nameof(layers));
        }
        foreach (int layer in _layers)
        {
            if ((uint)layer >= (uint)model.LayerCount)
            {
                throw new ArgumentOutOfRangeException(nameof(layers), layer, $"Layers must be in [0, {model.LayerCount}).");
            }
        }
        if (_layers.Distinct().Count() != _layers.Length)
        {
            throw new ArgumentException("A layer is listed twice.", nameof(layers));
        }
        if (options.ReferenceSoftmax && contextOptions?.FlashAttention != FlashAttentionMode.Disabled)
        {
            throw new ArgumentException("The reference softmax exists only with flash attention off (FlashAttention = Disabled).", nameof(options));
        }
        Model = model;
        _halfPrecision = options.StoreHalfPrecision;
        LlamaBackend.EnsureInitialized();
        HeedCaptureNative.Options native;
        fixed (int* p = _layers)
        {
            native = new HeedCaptureNative.Options
            {
                layers = p, n_layers = _layers.Length, store_dtype = options.StoreHalfPrecision ? 1 : 0,
                reference_softmax = options.ReferenceSoftmax ? 1 : 0,
            };
            HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_create(&native, out _session), "heed_capture_create");
        }
        try
        {
            if (model.GgmlLibrary is { } ggml)
            {
                HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_use_ggml(_session, ggml), "heed_capture_use_ggml");
            }
            contextOptions ??= new LlamaContextOptions();
            Context = model.CreateContext(contextOptions with
            {
                EvalCallback = (HeedCaptureNative.heed_capture_eval_callback(), _session.DangerousGetHandle()),
            });
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    /// <summary>The model.</summary>
    public IInferenceEngine Model { get; }

    /// <summary>The context that decodes (sequence 0). Use <see cref="Evaluate"/> and <see cref="RemoveTokens"/> on this class to keep the capture in step.</summary>
    public IInferenceContext Context { get; }

    /// <summary>The captured layers.</summary>
    public IReadOnlyList<int> Layers => _layers;

    /// <summary>The position the next evaluated token takes.</summary>
    public int NextPosition => Context.NextPosition();

    /// <summary>
    /// Decodes tokens at the end of the sequence, keeping their query rows (to aggregate from)
    /// and/or key rows (to aggregate onto).
    /// </summary>
    public void Evaluate(ReadOnlySpan<int> tokens, bool keepQueries, bool keepKeys, CancellationToken cancellationToken = default)
    {
        int start = NextPosition;
        HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_begin(_session, start, keepQueries ? 1 : 0, keepKeys ? 1 : 0), "heed_capture_begin");
        try
        {
            Context.Evaluate(tokens, cancellationToken);
        }
        catch
        {
            HeedCaptureNative.heed_capture_drop(_session, start, -1);
            throw;
        }
        if (!_verified && (keepKeys || keepQueries))
        {
            Stats stats = GetStats(_layers[0]);
            if ((keepKeys && stats.Keys == 0) || (keepQueries && stats.Queries == 0))
            {
                throw new NotSupportedException(
                    $"attention capture is not supported for architecture {Model.Architecture}: the llama.cpp graph produced no " +
                    $"'Qcur-{_layers[0]}'/'Kcur-{_layers[0]}' rope tensors.");
            }
            _verified = true;
        }
    }

    /// <summary>
    /// Decodes tokens into <paramref name="sequence"/> starting at <paramref name="position"/> (at or after the
    /// sequence's next position), keeping their rows as <see cref="Evaluate"/> does. Rows are stored by position,
    /// not by sequence: keep one sequence's rows in the capture at a time.
    /// </summary>
    public void EvaluateAt(ReadOnlySpan<int> tokens, int sequence, int position, bool keepQueries, bool keepKeys,
        CancellationToken cancellationToken = default)
    {
        HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_begin(_session, position, keepQueries ? 1 : 0, keepKeys ? 1 : 0), "heed_capture_begin");
        try
        {
            Context.EvaluateAt(tokens, sequence, position, cancellationToken);
        }
        catch
        {
            HeedCaptureNative.heed_capture_drop(_session, position, position + tokens.Length);
            throw;
        }
    }

    /// <summary>A layer's key rows at positions [start, end) as stored (end -1: to the end), to put back with <see cref="PutKeys"/>.</summary>
    public KeyRows GetKeys(int layer, int start, int end = -1)
    {
        Stats stats = GetStats(layer);
        HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_get_keys(_session, layer, start, end, null, null, 0, out int n), "heed_capture_get_keys");
        byte[] data = new byte[n * stats.KvHeads * stats.HeadSize * (_halfPrecision ? 2 : 4)];
        int[] positions = new int[n];
        fixed (byte* d = data)
        fixed (int* p = positions)
        {
            HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_get_keys(_session, layer, start, end, d, p, n, out n), "heed_capture_get_keys");
        }
        return new KeyRows(data, positions, stats.KvHeads, stats.HeadSize, _halfPrecision);
    }

    /// <summary>Appends key rows of a layer (positions above every key row it holds), as if their tokens had been decoded.</summary>
    public void PutKeys(int layer, KeyRows rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.HalfPrecision != _halfPrecision || rows.Data.Length != rows.Positions.Length * rows.KvHeads * rows.HeadSize * (_halfPrecision ? 2 : 4))
        {
            throw new ArgumentException("These key rows do not match this capture's storage (precision or size).", nameof(rows));
        }
        fixed (byte* d = rows.Data)
        fixed (int* p = rows.Positions)
        {
            HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_put_keys(_session, layer, d, p, rows.Positions.Length,
                _halfPrecision ? 1 : 0, rows.KvHeads, rows.HeadSize), "heed_capture_put_keys");
        }
    }

    /// <summary>Key rows of one layer: <c>Positions.Length</c> rows of KvHeads × HeadSize values (f16 or f32).</summary>
    public sealed record KeyRows(byte[] Data, int[] Positions, int KvHeads, int HeadSize, bool HalfPrecision);

    /// <summary>Removes positions [start, end) from the context's cache and from the capture (end -1: to the end).</summary>
    public void RemoveTokens(int start, int end = -1)
    {
        Context.RemoveTokens(start, end);
        HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_drop(_session, start, end), "heed_capture_drop");
    }

    /// <summary>Empties the cache and the capture.</summary>
    public void Clear()
    {
        Context.Clear();
        HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_clear(_session), "heed_capture_clear");
    }

    /// <summary>The positions of the captured key rows of a layer, ascending.</summary>
    public int[] KeyPositions(int layer)
    {
        Stats stats = GetStats(layer);
        int[] positions = new int[stats.Keys];
        fixed (int* p = positions)
        {
            HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_key_positions(_session, layer, p, positions.Length), "heed_capture_key_positions");
        }
        return positions;
    }

    /// <summary>
    /// Attention mass per key row of a layer (in <see cref="KeyPositions"/> order): for each kept
    /// query row at a position in [queryStart, queryEnd), its causal softmax over the keys, summed
    /// over heads and rows. Runs the fused kernel; the n_q × n_k matrix never exists.
    /// </summary>
    public float[] Aggregate(int layer, int queryStart, int queryEnd = -1, AttentionDevice device = AttentionDevice.Cpu)
    {
        if (queryStart < 0 || (queryEnd >= 0 && queryEnd < queryStart))
        {
            throw new ArgumentOutOfRangeException(nameof(queryStart), $"[{queryStart}, {queryEnd}) is not a range of positions.");
        }
        Stats stats = GetStats(layer);
        if (stats.Keys == 0)
        {
            throw new InvalidOperationException($"Layer {layer} has no key rows: evaluate tokens with keepKeys first.");
        }
        float[] mass = new float[stats.Keys];
        fixed (float* m = mass)
        {
            HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_aggregate(_session, layer, queryStart, queryEnd, AttentionScale,
                1, device == AttentionDevice.Cuda ? 1 : 0, m, mass.Length), "heed_capture_aggregate");
        }
        return mass;
    }

    /// <summary>
    /// llama.cpp's own softmax (kq_soft_max-L) of a layer summed over heads and the query rows of
    /// decodes that kept queries, per KV cell (= position while one sequence fills an empty cache
    /// in order). Needs <see cref="AttentionCaptureOptions.ReferenceSoftmax"/>.
    /// </summary>
    public double[] ReferenceMass(int layer)
    {
        int cells;
        HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_reference_mass(_session, layer, null, 0, out cells), "heed_capture_reference_mass");
        double[] mass = new double[cells];
        fixed (double* m = mass)
        {
            HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_reference_mass(_session, layer, m, cells, out cells), "heed_capture_reference_mass");
        }
        return mass;
    }

    /// <summary>Bytes the capture holds (rows of every layer, scratch space).</summary>
    public long BytesHeld => (long)GetStats(_layers[0]).Bytes;

    /// <summary>Row counts and head geometry of a layer.</summary>
    public Stats GetStats(int layer)
    {
        HeedError.ThrowIfFailed(HeedCaptureNative.heed_capture_stats(_session, layer, out int queries, out int keys, out int heads,
            out int kvHeads, out int headSize, out nuint bytes), "heed_capture_stats");
        return new Stats(queries, keys, heads, kvHeads, headSize, bytes);
    }

    /// <summary>Rows held for one layer and the model's head geometry (zeros until first seen).</summary>
    public readonly record struct Stats(int Queries, int Keys, int Heads, int KvHeads, int HeadSize, nuint Bytes);

    // llama.cpp scales scores by 1/sqrt(head_dim) unless the model says otherwise.
    private float AttentionScale =>
        float.TryParse(Model.GetMetadata($"{Model.Architecture}.attention.scale"), System.Globalization.CultureInfo.InvariantCulture, out float s) ? s : 0f;

    /// <summary>Frees the context, then the capture.</summary>
    public void Dispose()
    {
        Context.Dispose();
        _session.Dispose();
    }
}

/// <summary>What a capture stores.</summary>
public sealed record AttentionCaptureOptions
{
    /// <summary>Keep Q and K rows as f16 (half the memory; ~1e-3 relative error in the mass).</summary>
    public bool StoreHalfPrecision { get; init; }

    /// <summary>Also sum llama.cpp's own softmax (needs flash attention off): the exactness reference.</summary>
    public bool ReferenceSoftmax { get; init; }
}

/// <summary>Where the aggregation kernel runs.</summary>
public enum AttentionDevice
{
    /// <summary>The CPU (threaded, AVX2 where present).</summary>
    Cpu,
    /// <summary>The first CUDA device (the captured rows are copied there).</summary>
    Cuda,
}
