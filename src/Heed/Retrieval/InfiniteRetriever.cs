using Heed.Attention;
using Heed.Llama;
using Heed.Text;

namespace Heed.Retrieval;

/// <summary>
/// InfiniRetri (Ye et al. 2025, "Infinite Retrieval: attention enhanced LLMs in long-context
/// processing"): reads a document of any length in sentence-aligned chunks. For each chunk the
/// model sees [cached sentences + chunk + question]; the question's attention onto the context
/// at one layer scores each token, a 1-D convolution turns token scores into phrase scores, and
/// the sentences holding the top-K phrases become the cache for the next chunk. Memory and time
/// per chunk stay flat as the document grows; the answer comes from the final cache.
/// </summary>
/// <remarks>
/// Choices where the paper leaves them open: the question rows are the whole "Question: …
/// Answer:" tail; attention is summed over heads and averaged over question rows, minus the same
/// for a content-free question (<see cref="InfiniteRetrieverOptions.Calibrate"/>); the layer is
/// found by a one-pass probe unless given (<see cref="InfiniteRetrieverOptions.Layer"/>); the convolution is a box filter of
/// <see cref="InfiniteRetrieverOptions.PhraseWidth"/> tokens; a sentence's score is the best
/// phrase score among its tokens; sentences holding a top-K token (with one neighbour on each
/// side) are kept best first until the cache budget is full, then put back in document order.
/// Cached sentences are re-scored in every chunk but keep the best score they ever had, so the
/// cache is a running top list over the whole document rather than over the last chunk.
/// </remarks>
public sealed class InfiniteRetriever : ILongContextRetriever, IDisposable
{
    private readonly IInferenceEngine _model;
    private readonly InfiniteRetrieverOptions _options;
    private readonly AttentionCapture _capture;
    private readonly int _layer;
    private readonly int _cacheBudget;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly int[] _calibrationTokens;

    /// <summary>Creates a retriever with its own context over <paramref name="model"/> (Heed's or another engine's).</summary>
    public InfiniteRetriever(IInferenceEngine model, InfiniteRetrieverOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? new InfiniteRetrieverOptions();
        _options.Validate(model);
        _model = model;
        _layer = _options.Layer >= 0 ? _options.Layer : RetrievalLayerProbe.FindLayer(model, QuestionFormat, _options.ContextOptions);
        int contextSize = _options.ContextSize > 0 ? _options.ContextSize : model.TrainedContextLength;
        int batch = Math.Min(512, contextSize);
        _capture = new AttentionCapture(model, [_layer],
            _options.ContextOptions with { ContextSize = contextSize, BatchSize = batch, MicroBatchSize = Math.Min(batch, _options.ContextOptions.MicroBatchSize) });
        _calibrationTokens = model.Tokenizer.Tokenize(string.Format(QuestionFormat, "N/A"), addSpecial: false);
        _cacheBudget = _options.CacheTokens > 0 ? Math.Min(_options.CacheTokens, ContextSize / 2) : ContextSize / 4;
    }

    // The tail after the context; it ends where an answer would begin, so its rows look for one.
    private const string QuestionFormat = "\nQuestion: {0}\nAnswer:";

    /// <summary>The layer whose attention scores tokens (chosen by the probe unless set).</summary>
    public int Layer => _layer;

    /// <summary>Tokens per forward pass.</summary>
    public int ContextSize => _capture.Context.ContextSize;

    /// <summary>The most bytes the attention capture held during the last retrieval.</summary>
    public long PeakCaptureBytes { get; private set; }

    /// <summary>Retrieves from a string.</summary>
    public Task<RetrievalResult> RetrieveAsync(string question, string document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(document);
        return RetrieveCoreAsync(question, new StringReader(document), document.Length, progress, cancellationToken);
    }

    /// <summary>Retrieves from a UTF-8 text file, streamed.</summary>
    public async Task<RetrievalResult> RetrieveFileAsync(string question, string path, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        using StreamReader reader = OpenFile(path, out long length);
        return await RetrieveCoreAsync(question, reader, length, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<RetrievalResult> RetrieveAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default) => RetrieveCoreAsync(question, document, null, progress, cancellationToken);

    /// <inheritdoc />
    public async Task<AnswerResult> AnswerAsync(string question, TextReader document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        RetrievalResult retrieval = await RetrieveAsync(question, document, progress, cancellationToken).ConfigureAwait(false);
        return new AnswerResult(await AnswerFromEvidenceAsync(question, retrieval, cancellationToken).ConfigureAwait(false), retrieval);
    }

    /// <summary>Retrieves from a file, then answers from the evidence.</summary>
    public async Task<AnswerResult> AnswerFileAsync(string question, string path, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        RetrievalResult retrieval = await RetrieveFileAsync(question, path, progress, cancellationToken).ConfigureAwait(false);
        return new AnswerResult(await AnswerFromEvidenceAsync(question, retrieval, cancellationToken).ConfigureAwait(false), retrieval);
    }

    private static StreamReader OpenFile(string path, out long length)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (Directory.Exists(path))
        {
            throw new ArgumentException($"'{path}' is a directory; pass a text file.", nameof(path));
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Document '{path}' does not exist.", path);
        }
        length = new FileInfo(path).Length;
        return new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
    }

    private async Task<RetrievalResult> RetrieveCoreAsync(string question, TextReader document, long? totalChars,
        IProgress<RetrievalProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (string.IsNullOrWhiteSpace(question))
        {
            throw new ArgumentException("The question is empty; say what to look for.", nameof(question));
        }
        // The tail ends where an answer would begin, so the question rows look for the answer.
        int[] questionTokens = _model.Tokenizer.Tokenize(string.Format(QuestionFormat, question.Trim()), addSpecial: false);
        int chunkBudget = ContextSize - 1 - _cacheBudget - Math.Max(questionTokens.Length, _calibrationTokens.Length);
        // A chunk must hold the longest sentence piece next to a full cache, or reading fails partway through.
        int needed = Math.Max(32, _options.MaxSentenceTokens);
        if (chunkBudget < needed)
        {
            throw new ArgumentException(
                $"The question takes {questionTokens.Length} tokens; with a {_cacheBudget}-token cache that leaves {Math.Max(chunkBudget, 0)} " +
                $"tokens of a {ContextSize}-token context for the document ({needed} needed). Shorten the question or use a larger ContextSize.",
                nameof(question));
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => Read(document, totalChars, questionTokens, chunkBudget, progress, cancellationToken), cancellationToken)
                .ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    // A sentence in play: a class, so identical sentences at different places stay distinct.
    private sealed class Piece(string text, long offset, int length, int[] tokens)
    {
        public string Text { get; } = text;
        public long Offset { get; } = offset;
        public int Length { get; } = length;
        public int[] Tokens { get; } = tokens;
        public double Score { get; set; } = double.NegativeInfinity;

        public bool Cached => !double.IsNegativeInfinity(Score);
    }

    private RetrievalResult Read(TextReader document, long? totalChars, int[] questionTokens, int chunkBudget,
        IProgress<RetrievalProgress>? progress, CancellationToken cancellationToken)
    {
        var counted = new CountingTextReader(document);
        List<Piece> cache = [];
        List<Piece> chunk = [];
        int chunkTokens = 0, chunks = 0;
        long tokens = 0;
        PeakCaptureBytes = 0;

        void Flush()
        {
            cancellationToken.ThrowIfCancellationRequested();
            cache = ScoreAndSelect([.. cache, .. chunk], questionTokens, cancellationToken);
            tokens += chunkTokens;
            chunks++;
            chunk.Clear();
            chunkTokens = 0;
            progress?.Report(new RetrievalProgress(chunks, counted.CharactersRead, totalChars));
        }

        foreach ((long offset, string text, int[] ids) in Sentences(counted, cancellationToken))
        {
            if (chunkTokens + ids.Length > chunkBudget - CacheTokenCount(cache) + _cacheBudget && chunk.Count > 0)
            {
                Flush();
            }
            chunk.Add(new Piece(text, offset, text.Length, ids));
            chunkTokens += ids.Length;
        }
        if (chunk.Count > 0)
        {
            Flush();
        }
        _capture.Clear();
        IReadOnlyList<Evidence> evidence = cache.Select(p => new Evidence(p.Text, p.Score, p.Offset, p.Length)).ToList();
        return new RetrievalResult(evidence, chunks, tokens);
    }

    // The document's sentences (the RAG pipeline's abbreviation-aware splitter); one longer than
    // MaxSentenceTokens is cut at word boundaries so that no piece can outgrow a chunk.
    private IEnumerable<(long Offset, string Text, int[] Tokens)> Sentences(TextReader document, CancellationToken cancellationToken)
    {
        int[] Tokens(string text) => _model.Tokenizer.Tokenize(" " + text, addSpecial: false);
        foreach (StreamedSentence sentence in new SentenceReader(document).Read(cancellationToken))
        {
            int[] ids = Tokens(sentence.Text);
            if (ids.Length <= _options.MaxSentenceTokens)
            {
                yield return (sentence.Start, sentence.Text, ids);
                continue;
            }
            foreach ((long start, string text) in LongSentenceSplitter.Split(sentence, _options.MaxSentenceTokens, t => Tokens(t).Length))
            {
                yield return (start, text, Tokens(text));
            }
        }
    }

    private static int CacheTokenCount(List<Piece> cache) => cache.Sum(p => p.Tokens.Length);

    private List<Piece> ScoreAndSelect(List<Piece> pieces, int[] questionTokens, CancellationToken cancellationToken)
    {
        var context = new List<int>(ContextSize) { _model.Tokenizer.BeginningOfSequence };
        int[] starts = new int[pieces.Count];
        for (int i = 0; i < pieces.Count; i++)
        {
            starts[i] = context.Count;
            context.AddRange(pieces[i].Tokens);
        }
        _capture.Clear();
        _capture.Evaluate(context.ToArray(), keepQueries: false, keepKeys: true, cancellationToken);
        int questionStart = _capture.NextPosition;
        double[] tokenScore = QuestionAttention(questionTokens, questionStart, cancellationToken);
        if (_options.Calibrate)
        {
            // The same tail with a content-free question on the same cache: what the model attends
            // to whatever is asked (the recent tokens, delimiters). Subtracting it leaves what
            // this question is about.
            _capture.RemoveTokens(questionStart);
            double[] bias = QuestionAttention(_calibrationTokens, questionStart, cancellationToken);
            for (int t = 0; t < tokenScore.Length; t++)
            {
                tokenScore[t] -= bias[t];
            }
        }
        tokenScore[0] = 0; // BOS soaks up attention ("attention sink") and is no evidence
        double[] phrase = PhraseScores(tokenScore, _options.PhraseWidth);

        // Sentences holding one of the top-K phrase positions are candidates.
        var top = new HashSet<int>(Enumerable.Range(1, questionStart - 1)
            .OrderByDescending(t => phrase[t]).Take(_options.TopKTokens));
        var holds = new bool[pieces.Count];
        for (int i = 0; i < pieces.Count; i++)
        {
            double best = double.MinValue;
            for (int t = starts[i]; t < starts[i] + pieces[i].Tokens.Length; t++)
            {
                best = Math.Max(best, phrase[t]);
                holds[i] |= top.Contains(t);
            }
            // A cached sentence keeps the best score it earned and stays a candidate: it sits ever
            // farther from the question as chunks pass, and re-scoring alone let fresh filler
            // next to the question push the evidence out (measured on heed-tiny at 16K tokens).
            holds[i] |= pieces[i].Cached;
            pieces[i].Score = Math.Max(pieces[i].Score, best);
        }
        // A kept sentence brings its neighbours (ranked just after it): a fact often spans two
        // sentences ("The key is 7. Remember it.") and the answer needs both.
        var candidates = new Dictionary<Piece, double>();
        for (int i = 0; i < pieces.Count; i++)
        {
            if (!holds[i])
            {
                continue;
            }
            for (int n = Math.Max(0, i - _options.NeighborSentences); n <= Math.Min(pieces.Count - 1, i + _options.NeighborSentences); n++)
            {
                double rank = n == i ? pieces[i].Score : pieces[i].Score - 1e-9 * (1 + Math.Abs(n - i));
                candidates[pieces[n]] = Math.Max(candidates.GetValueOrDefault(pieces[n], double.MinValue), rank);
            }
        }
        var kept = new List<Piece>();
        int used = 0;
        foreach (Piece p in candidates.OrderByDescending(kv => kv.Value).Select(kv => kv.Key))
        {
            if (used + p.Tokens.Length <= _cacheBudget)
            {
                kept.Add(p);
                used += p.Tokens.Length;
            }
        }
        return kept.OrderBy(p => p.Offset).ToList();
    }

    // Attention per context position from the tail's rows at the scoring layer, averaged over rows.
    private double[] QuestionAttention(int[] tail, int questionStart, CancellationToken cancellationToken)
    {
        _capture.Evaluate(tail, keepQueries: true, keepKeys: true, cancellationToken);
        PeakCaptureBytes = Math.Max(PeakCaptureBytes, _capture.BytesHeld);
        float[] mass = _capture.Aggregate(_layer, questionStart, -1, _options.Device);
        int[] positions = _capture.KeyPositions(_layer);
        double[] score = new double[questionStart];
        for (int j = 0; j < positions.Length; j++)
        {
            if (positions[j] < questionStart)
            {
                score[positions[j]] = mass[j] / tail.Length;
            }
        }
        return score;
    }

    internal static double[] PhraseScores(double[] tokenScore, int width)
    {
        int half = width / 2;
        double[] phrase = new double[tokenScore.Length];
        for (int t = 0; t < tokenScore.Length; t++)
        {
            for (int k = Math.Max(0, t - half); k <= Math.Min(tokenScore.Length - 1, t + half); k++)
            {
                phrase[t] += tokenScore[k];
            }
        }
        return phrase;
    }

    /// <summary>Generates an answer to the question from evidence retrieved before.</summary>
    public async Task<string> AnswerFromEvidenceAsync(string question, RetrievalResult retrieval, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(question);
        ArgumentNullException.ThrowIfNull(retrieval);
        string context = string.Join(" ", retrieval.Evidence.Select(e => e.Text));
        string prompt = context + string.Format(QuestionFormat, question.Trim());
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _capture.Clear();
            var options = new GenerationOptions { MaxTokens = _options.AnswerMaxTokens, StopSequences = ["\n"] };
            var answer = new System.Text.StringBuilder();
            await foreach (string piece in _capture.Context.GenerateAsync(prompt, options, cancellationToken).ConfigureAwait(false))
            {
                answer.Append(piece);
            }
            _capture.Clear();
            return answer.ToString().Trim();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Frees the retriever's context and capture.</summary>
    public void Dispose()
    {
        _capture.Dispose();
        _gate.Dispose();
    }
}
