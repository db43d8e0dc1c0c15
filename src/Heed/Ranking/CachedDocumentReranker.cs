using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Heed.Attention;
using Heed.Llama;

namespace Heed.Ranking;

/// <summary>
/// Block ICR (Block-Attention, BlockRank): in-context re-ranking over documents whose cache is kept.
/// Each document is encoded once, in a llama.cpp sequence of its own, right after the shared
/// instruction; its KV cells and its captured key rows are kept, keyed by a hash of its tokens, with
/// the position they sit at. A query moves each document to the position it takes in the prompt
/// (llama.cpp's K-shift, seq_add; the same rotation for the key rows), copies the documents'
/// sequences into its own (cells are shared, not copied) and decodes only its tail (and the "N/A"
/// calibration tail). Scores are read exactly as <see cref="InContextReranker"/> reads them,
/// windows included.
/// </summary>
/// <remarks>
/// <para>
/// Documents do not attend to each other (block attention). A model that was not trained that way
/// ranks somewhat differently than with full ICR; with a single document there is nothing to attend
/// across and the two agree.
/// </para>
/// <para>
/// A document is not encoded where it lands: llama.cpp decodes a sequence's positions consecutively,
/// so a document that follows the instruction with a gap (the other documents' places) cannot be
/// decoded there. It is encoded next to the instruction and moved, as Block-Attention re-encodes
/// block positions: its keys are rotated to the new position, while its values and its keys'
/// content saw the instruction from the first document's distance. Plain and linear RoPE are supported.
/// </para>
/// <para>
/// The cache lives in the reranker's context: up to <see cref="CachedDocumentRerankerOptions.MaxCachedDocuments"/>
/// documents and <see cref="CachedDocumentRerankerOptions.CacheTokens"/> cells, the least recently
/// used going first. <see cref="SaveCache"/> writes it to a file and <see cref="LoadCache"/> reads it
/// back into a reranker over the same model with the same options.
/// </para>
/// </remarks>
public sealed class CachedDocumentReranker : IDocumentReranker, IDisposable
{
    private const int QuerySequence = 0, PrefixSequence = 1, FirstDocumentSequence = 2;
    private const string FileMagic = "HEEDBLK1";

    private readonly IInferenceEngine _model;
    private readonly CachedDocumentRerankerOptions _options;
    private readonly InContextRerankerOptions _ranking;
    private readonly AttentionCapture _capture;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly int _window;
    private readonly KeyRotation _rotation;
    private readonly Dictionary<string, List<Block>> _blocks = new(StringComparer.Ordinal);
    private readonly Stack<int> _freeSequences = new();
    private Block? _prefix;
    private int _cachedTokens;
    private long _clock;

    /// <summary>Creates a reranker with its own multi-sequence context over <paramref name="model"/>.</summary>
    /// <exception cref="ArgumentException">Options out of range.</exception>
    /// <exception cref="NotSupportedException">The engine cannot hold several sequences in one cache.</exception>
    public CachedDocumentReranker(IInferenceEngine model, CachedDocumentRerankerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? new CachedDocumentRerankerOptions();
        _options.Validate();
        _ranking = _options.Ranking;
        _model = model;
        _window = _ranking.ContextSize > 0 ? _ranking.ContextSize : model.TrainedContextLength;
        int cacheTokens = _options.CacheTokens > 0 ? _options.CacheTokens : 8 * _window;
        if (cacheTokens < _window)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.CacheTokens,
                $"CacheTokens ({cacheTokens}) must hold at least one window of {_window} tokens (Ranking.ContextSize).");
        }
        int batch = Math.Min(512, _window);
        _capture = new AttentionCapture(model, _ranking.Layers,
            _ranking.ContextOptions with
            {
                ContextSize = cacheTokens, BatchSize = batch, MicroBatchSize = Math.Min(batch, _ranking.ContextOptions.MicroBatchSize),
                SequenceCount = _options.SequenceCount, UnifiedKvCache = true,
            },
            new AttentionCaptureOptions { StoreHalfPrecision = _ranking.StoreHalfPrecision });
        if (_capture.Context.SequenceCount < _options.SequenceCount)
        {
            _capture.Dispose();
            throw new NotSupportedException($"This engine's context holds {_capture.Context.SequenceCount} sequences; block ICR needs {_options.SequenceCount}.");
        }
        for (int s = _options.SequenceCount - 1; s >= FirstDocumentSequence; s--)
        {
            _freeSequences.Push(s);
        }
        KeyRotation? rotation = KeyRotation.For(model);
        if (rotation is null)
        {
            _capture.Dispose();
            throw new NotSupportedException(
                $"Block ICR moves cached documents with RoPE (K-shift); this {model.Architecture} model's rotary embedding " +
                $"(scaling '{model.GetMetadata($"{model.Architecture}.rope.scaling.type")}') is not one Heed rotates: plain or linear RoPE of llama, mistral3, granite, qwen2, qwen3.");
        }
        _rotation = rotation;
    }

    /// <summary>Tokens one window (one prompt) holds.</summary>
    public int ContextSize => _window;

    /// <summary>KV cells the shared cache holds.</summary>
    public int CacheTokens => _capture.Context.ContextSize;

    /// <summary>Documents whose cache is kept now.</summary>
    public int CachedDocuments => _blocks.Values.Sum(b => b.Count);

    /// <summary>How the last <see cref="RerankAsync"/> or <see cref="CacheDocumentsAsync"/> found its documents.</summary>
    public CacheUse LastUse { get; private set; }

    /// <summary>Documents found at their position (hits), moved by K-shift, and encoded, in one call.</summary>
    public readonly record struct CacheUse(int Hits, int Shifted, int Encoded);

    /// <inheritdoc />
    public async Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
        CancellationToken cancellationToken = default)
    {
        InContextReranker.ValidateInput(query, documents, topK);
        RerankPrompt prompt = RerankPrompt.Build(_model, _ranking, query, _window);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            LastUse = default;
            double[] scores = await Task.Run(() => InContextReranker.Score(prompt, documents, Enumerable.Range(0, documents.Count).ToArray(),
                window => ScoreWindow(prompt, window, cancellationToken), cancellationToken), cancellationToken).ConfigureAwait(false);
            return InContextReranker.Ranked(documents, scores, topK);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Encodes the documents ahead of queries, at the positions a query of the calibration query's
    /// length gives them (a query that packs them otherwise moves them by K-shift).
    /// </summary>
    public async Task CacheDocumentsAsync(IReadOnlyList<string> documents, CancellationToken cancellationToken = default)
    {
        InContextReranker.ValidateInput(_ranking.CalibrationQuery, documents, null);
        RerankPrompt prompt = RerankPrompt.Build(_model, _ranking, _ranking.CalibrationQuery, _window);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            LastUse = default;
            await Task.Run(() =>
            {
                foreach (RerankPrompt.Window window in prompt.Pack(documents, Enumerable.Range(0, documents.Count).ToArray()))
                {
                    CheckWindow(window);
                    EnsureBlocks(prompt, window, cancellationToken);
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private void CheckWindow(RerankPrompt.Window window)
    {
        if (window.Documents.Count > _options.MaxCachedDocuments)
        {
            throw new ArgumentException(
                $"A window of {_window} tokens holds {window.Documents.Count} of these documents, more than MaxCachedDocuments " +
                $"({_options.MaxCachedDocuments}) sequences; raise MaxCachedDocuments or lower Ranking.ContextSize.", "documents");
        }
    }

    private double[] ScoreWindow(RerankPrompt prompt, RerankPrompt.Window window, CancellationToken cancellationToken)
    {
        CheckWindow(window);
        Block[] blocks = EnsureBlocks(prompt, window, cancellationToken);

        // The query's sequence: the instruction, then every document at its place; the capture gets their key rows.
        _capture.RemoveTokens(0);
        IInferenceContext context = _capture.Context;
        Block prefix = _prefix!;
        context.CopySequence(PrefixSequence, QuerySequence, 0, -1);
        PutKeys(prefix);
        foreach (Block block in blocks)
        {
            context.CopySequence(block.Sequence, QuerySequence, block.Position, block.End);
            PutKeys(block);
        }
        int tailStart = _capture.NextPosition;
        if (tailStart != window.Tokens.Length)
        {
            throw new InvalidOperationException($"The query's sequence ends at {tailStart}, the window at {window.Tokens.Length}: the document cache is inconsistent.");
        }

        double[] calibration = InContextReranker.TailAttention(_capture, _ranking, prompt.Calibration, tailStart, cancellationToken);
        _capture.RemoveTokens(tailStart);
        double[] attention = InContextReranker.TailAttention(_capture, _ranking, prompt.Query, tailStart, cancellationToken);
        _capture.RemoveTokens(0);
        return InContextReranker.WindowScores(window, attention, calibration);
    }

    private void PutKeys(Block block)
    {
        for (int i = 0; i < block.Keys.Length; i++)
        {
            _capture.PutKeys(_capture.Layers[i], block.Keys[i]);
        }
    }

    // Every document block of the window in the cache at its position, in window order.
    private Block[] EnsureBlocks(RerankPrompt prompt, RerankPrompt.Window window, CancellationToken cancellationToken)
    {
        EnsurePrefix(prompt, cancellationToken);
        var pinned = new HashSet<Block>();
        var result = new Block[window.Documents.Count];
        for (int i = 0; i < result.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            RerankPrompt.DocumentSpan span = window.Documents[i];
            int[] tokens = window.Tokens[span.BlockStart..span.BlockEnd];
            string hash = Hash(tokens);
            List<Block> same = _blocks.TryGetValue(hash, out List<Block>? list) ? list : _blocks[hash] = [];
            Block? block = same.FirstOrDefault(b => !pinned.Contains(b));
            CacheUse use = LastUse;
            if (block is null)
            {
                block = Encode(hash, tokens, pinned, cancellationToken);
                same.Add(block);
                LastUse = use with { Encoded = use.Encoded + 1 };
            }
            else
            {
                LastUse = block.Position == span.BlockStart ? use with { Hits = use.Hits + 1 } : use with { Shifted = use.Shifted + 1 };
            }
            if (block.Position != span.BlockStart)
            {
                Shift(block, span.BlockStart);
            }
            block.LastUse = ++_clock;
            pinned.Add(block);
            result[i] = block;
        }
        return result;
    }

    private void EnsurePrefix(RerankPrompt prompt, CancellationToken cancellationToken)
    {
        int[] head = prompt.Head.ToArray();
        string hash = Hash(head);
        if (_prefix?.Hash == hash)
        {
            return;
        }
        if (_prefix is not null)
        {
            throw new InvalidOperationException("The instruction's tokens changed; a CachedDocumentReranker keeps one instruction.");
        }
        IInferenceContext context = _capture.Context;
        _capture.RemoveTokens(0);
        context.RemoveTokens(PrefixSequence, 0, -1);
        _capture.EvaluateAt(head, PrefixSequence, 0, keepQueries: false, keepKeys: true, cancellationToken);
        _prefix = new Block(hash, 0, head.Length, PrefixSequence, TakeKeys(0, head.Length));
        _cachedTokens += head.Length;
    }

    // A document is encoded right after the instruction (llama.cpp decodes a sequence's positions
    // consecutively, so it cannot start further on with a gap); EnsureBlocks then moves it to its place.
    private Block Encode(string hash, int[] tokens, HashSet<Block> pinned, CancellationToken cancellationToken)
    {
        int position = _prefix!.Length;
        MakeRoom(tokens.Length, pinned);
        int sequence = _freeSequences.Pop();
        IInferenceContext context = _capture.Context;
        try
        {
            _capture.RemoveTokens(0);
            context.RemoveTokens(sequence, 0, -1);
            // The document sees the instruction and itself: the instruction's cells join its sequence while it decodes.
            context.CopySequence(PrefixSequence, sequence, 0, -1);
            _capture.EvaluateAt(tokens, sequence, position, keepQueries: false, keepKeys: true, cancellationToken);
            context.RemoveTokens(sequence, 0, position);
            var block = new Block(hash, position, tokens.Length, sequence, TakeKeys(position, position + tokens.Length));
            _cachedTokens += tokens.Length;
            return block;
        }
        catch
        {
            context.RemoveTokens(sequence, 0, -1);
            _capture.RemoveTokens(0);
            _freeSequences.Push(sequence);
            throw;
        }
    }

    // The capture's key rows of [start, end) for every layer, then those rows leave the capture.
    private AttentionCapture.KeyRows[] TakeKeys(int start, int end)
    {
        AttentionCapture.KeyRows[] keys = _capture.Layers.Select(layer => _capture.GetKeys(layer, start, end)).ToArray();
        _capture.RemoveTokens(0);
        return keys;
    }

    // Frees sequences and cells, least recently used first, until a block of `tokens` fits next to a window's tail.
    private void MakeRoom(int tokens, HashSet<Block> pinned)
    {
        int tailRoom = _window; // the query's tail never needs more than a window
        while (_freeSequences.Count == 0 || _cachedTokens + tokens + tailRoom > CacheTokens)
        {
            Block? oldest = _blocks.Values.SelectMany(b => b).Where(b => !pinned.Contains(b)).MinBy(b => b.LastUse);
            if (oldest is null)
            {
                throw new InvalidOperationException(
                    $"The document cache ({CacheTokens} cells, {_options.MaxCachedDocuments} documents) cannot hold this window's documents; " +
                    "raise CacheTokens or MaxCachedDocuments.");
            }
            Evict(oldest);
        }
    }

    private void Evict(Block block)
    {
        _capture.Context.RemoveTokens(block.Sequence, 0, -1);
        _blocks[block.Hash].Remove(block);
        if (_blocks[block.Hash].Count == 0)
        {
            _blocks.Remove(block.Hash);
        }
        _freeSequences.Push(block.Sequence);
        _cachedTokens -= block.Length;
    }

    // Moves a cached block to another position: llama.cpp re-rotates its cells' keys (K-shift) before
    // the next decode; the captured key rows get the same rotation here.
    private void Shift(Block block, int position)
    {
        int delta = position - block.Position;
        _capture.Context.ShiftPositions(block.Sequence, block.Position, block.End, delta);
        for (int i = 0; i < block.Keys.Length; i++)
        {
            block.Keys[i] = _rotation.Rotate(block.Keys[i], delta);
        }
        block.Position = position;
    }

    // Tests: the key rows kept for an unnumbered document (the one block of its text).
    internal AttentionCapture.KeyRows[] CachedKeys(string document) =>
        _blocks[Hash(_model.Tokenizer.Tokenize($"\n\n[*] {document.Trim()}", addSpecial: false))].Single().Keys;

    private static string Hash(int[] tokens) => Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(tokens.AsSpan())));

    /// <summary>Forgets every cached document (and the instruction's cache).</summary>
    public void ClearCache()
    {
        _gate.Wait();
        try
        {
            ClearCore();
        }
        finally
        {
            _gate.Release();
        }
    }

    private void ClearCore()
    {
        foreach (Block block in _blocks.Values.SelectMany(b => b).ToList())
        {
            Evict(block);
        }
        _capture.Clear();
        _prefix = null;
        _cachedTokens = 0;
    }

    /// <summary>
    /// Writes the document cache (the instruction's and every document's KV cells and key rows) to
    /// <paramref name="path"/>, e.g. next to a knowledge base's index file.
    /// </summary>
    public void SaveCache(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        _gate.Wait();
        try
        {
            if (_prefix is null)
            {
                throw new InvalidOperationException("The cache is empty: rank or cache documents first.");
            }
            string temporary = path + ".tmp";
            using (var writer = new BinaryWriter(File.Create(temporary)))
            {
                writer.Write(FileMagic);
                writer.Write(Fingerprint());
                List<Block> blocks = [_prefix, .. _blocks.Values.SelectMany(b => b).OrderBy(b => b.LastUse)];
                writer.Write(blocks.Count);
                foreach (Block block in blocks)
                {
                    writer.Write(block.Hash);
                    writer.Write(block.Position);
                    writer.Write(block.Length);
                    byte[] state = _capture.Context.SaveSequenceState(block.Sequence);
                    writer.Write(state.Length);
                    writer.Write(state);
                    foreach (AttentionCapture.KeyRows keys in block.Keys)
                    {
                        writer.Write(keys.KvHeads);
                        writer.Write(keys.HeadSize);
                        writer.Write(keys.Positions.Length);
                        writer.Write(MemoryMarshal.AsBytes(keys.Positions.AsSpan()));
                        writer.Write(keys.Data.Length);
                        writer.Write(keys.Data);
                    }
                }
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Replaces the document cache with one that <see cref="SaveCache"/> wrote for the same model and options.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a cache file, or one for another model, options or cache size.</exception>
    public void LoadCache(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No document cache at {path}.", path);
        }
        _gate.Wait();
        try
        {
            ClearCore();
            try
            {
                using var reader = new BinaryReader(File.OpenRead(path));
                if (reader.ReadString() != FileMagic)
                {
                    throw new InvalidDataException($"{path} is not a Heed document cache.");
                }
                if (reader.ReadString() != Fingerprint())
                {
                    throw new InvalidDataException($"{path} was written for another model or other reranker options.");
                }
                int count = reader.ReadInt32();
                if (count < 1 || count - 1 > _options.MaxCachedDocuments)
                {
                    throw new InvalidDataException($"{path} holds {count - 1} documents; this reranker keeps at most {_options.MaxCachedDocuments}.");
                }
                for (int n = 0; n < count; n++)
                {
                    string hash = reader.ReadString();
                    int position = reader.ReadInt32(), length = reader.ReadInt32();
                    byte[] state = reader.ReadBytes(reader.ReadInt32());
                    var keys = new AttentionCapture.KeyRows[_capture.Layers.Count];
                    for (int i = 0; i < keys.Length; i++)
                    {
                        int kvHeads = reader.ReadInt32(), headSize = reader.ReadInt32(), rows = reader.ReadInt32();
                        int[] positions = MemoryMarshal.Cast<byte, int>(reader.ReadBytes(rows * sizeof(int))).ToArray();
                        byte[] data = reader.ReadBytes(reader.ReadInt32());
                        keys[i] = new AttentionCapture.KeyRows(data, positions, kvHeads, headSize, _ranking.StoreHalfPrecision);
                    }
                    if (_cachedTokens + length + _window > CacheTokens)
                    {
                        throw new InvalidDataException($"{path} holds more tokens than this reranker's {CacheTokens} cache cells leave room for.");
                    }
                    int sequence = n == 0 ? PrefixSequence : _freeSequences.Pop();
                    _capture.Context.LoadSequenceState(state, sequence);
                    var block = new Block(hash, position, length, sequence, keys) { LastUse = ++_clock };
                    _cachedTokens += length;
                    if (n == 0)
                    {
                        _prefix = block;
                    }
                    else
                    {
                        (_blocks.TryGetValue(hash, out List<Block>? list) ? list : _blocks[hash] = []).Add(block);
                    }
                }
            }
            catch (Exception e) when (e is EndOfStreamException or ArgumentException)
            {
                ClearCore();
                throw new InvalidDataException($"{path} is truncated or corrupt: {e.Message}", e);
            }
            catch
            {
                ClearCore();
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    // What a cache file must match: the model's shape and the settings that change tokens or rows.
    private string Fingerprint() => string.Join('|', _model.Architecture, _model.LayerCount, _model.TrainedContextLength,
        _model.GetMetadata("general.name") ?? "", _ranking.Instruction, _ranking.UseChatTemplate, string.Join(',', _capture.Layers),
        _ranking.StoreHalfPrecision, _ranking.ContextOptions.KeyCacheType, _ranking.ContextOptions.ValueCacheType, _window);

    /// <summary>Frees the context, its cache and the capture.</summary>
    public void Dispose()
    {
        _capture.Dispose();
        _gate.Dispose();
    }

    // One cached block: the tokens at [Position, End) of a sequence and their captured key rows per layer.
    private sealed class Block(string hash, int position, int length, int sequence, AttentionCapture.KeyRows[] keys)
    {
        public string Hash { get; } = hash;
        public int Position { get; set; } = position;
        public int Length { get; } = length;
        public int End => Position + Length;
        public int Sequence { get; } = sequence;
        public AttentionCapture.KeyRows[] Keys { get; } = keys;
        public long LastUse { get; set; }
    }

    // RoPE by a position delta, as llama.cpp's K-shift applies it to cached keys (ggml_rope_ext with the
    // delta as position): pairs (2i, 2i+1) for "norm" models, (i, i + n_rot/2) for NeoX-style ones.
    private sealed class KeyRotation(bool neox, int dimensions, float freqBase, float freqScale)
    {
        public static KeyRotation? For(IInferenceEngine model)
        {
            string arch = model.Architecture;
            bool neox = arch is "qwen2" or "qwen3";
            if (!neox && arch is not ("llama" or "mistral3" or "granite"))
            {
                return null;
            }
            string scaling = model.GetMetadata($"{arch}.rope.scaling.type") ?? "none";
            float factor = Float($"{arch}.rope.scaling.factor", 1f);
            if (scaling is not ("none" or "linear"))
            {
                return null; // YaRN and the like
            }
            int dimensions = (int)Float($"{arch}.rope.dimension_count", 0f);
            return new KeyRotation(neox, dimensions, Float($"{arch}.rope.freq_base", 10000f), scaling == "linear" && factor > 0 ? 1f / factor : 1f);

            float Float(string key, float fallback) =>
                float.TryParse(model.GetMetadata(key), NumberStyles.Float, CultureInfo.InvariantCulture, out float v) ? v : fallback;
        }

        public AttentionCapture.KeyRows Rotate(AttentionCapture.KeyRows keys, int delta)
        {
            int headSize = keys.HeadSize, rows = keys.Positions.Length * keys.KvHeads;
            int n = dimensions > 0 ? Math.Min(dimensions, headSize) : headSize;
            var cos = new float[n / 2];
            var sin = new float[n / 2];
            float thetaScale = MathF.Pow(freqBase, -2.0f / n), theta = delta;
            for (int i = 0; i < n / 2; i++)
            {
                cos[i] = MathF.Cos(freqScale * theta);
                sin[i] = MathF.Sin(freqScale * theta);
                theta *= thetaScale;
            }
            byte[] data = (byte[])keys.Data.Clone();
            var row = new float[headSize];
            for (int r = 0; r < rows; r++)
            {
                Read(data, keys.HalfPrecision, r * headSize, row);
                for (int i = 0; i < n / 2; i++)
                {
                    (int a, int b) = neox ? (i, i + n / 2) : (2 * i, 2 * i + 1);
                    float x0 = row[a], x1 = row[b];
                    row[a] = x0 * cos[i] - x1 * sin[i];
                    row[b] = x0 * sin[i] + x1 * cos[i];
                }
                Write(data, keys.HalfPrecision, r * headSize, row);
            }
            return keys with { Data = data, Positions = keys.Positions.Select(p => p + delta).ToArray() };
        }

        private static void Read(byte[] data, bool half, int offset, float[] row)
        {
            for (int j = 0; j < row.Length; j++)
            {
                row[j] = half
                    ? (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(2 * (offset + j))))
                    : BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(4 * (offset + j)));
            }
        }

        private static void Write(byte[] data, bool half, int offset, float[] row)
        {
            for (int j = 0; j < row.Length; j++)
            {
                if (half)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(2 * (offset + j)), BitConverter.HalfToUInt16Bits((Half)row[j]));
                }
                else
                {
                    BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * (offset + j)), row[j]);
                }
            }
        }
    }
}
