using Heed.Attention;
using Heed.Llama;
using Heed.Text;

namespace Heed.Retrieval;

/// <summary>
/// InfiniRetri (Ye et al. 2025, "Infinite Retrieval: attention enhanced LLMs in long-context
/// processing"): reads a document of any length in sentence-aligned chunks. For each chunk the
/// model sees [cached sentences + chunk + question]; the question's attention onto the context
/// scores each token, a 1-D convolution turns token scores into phrase scores, and the sentences
/// holding the top-K phrases become the cache for the next chunk. Memory and time per chunk stay
/// flat as the document grows; the answer comes from the final cache.
/// </summary>
/// <remarks>
/// Choices where the paper leaves them open: the question rows are the whole "Question: …
/// Answer:" tail; attention is averaged over heads and question rows, minus the same for a
/// content-free question (<see cref="InfiniteRetrieverOptions.Calibrate"/>); the layer is found
/// by a probe over varied facts and wordings unless given (<see cref="InfiniteRetrieverOptions.Layer"/>);
/// the convolution is a box filter of <see cref="InfiniteRetrieverOptions.PhraseWidth"/> tokens;
/// a sentence's score is the best phrase score among its tokens. Every pass re-scores the cached
/// sentences together with the chunk; the next cache is chosen by the best score each sentence
/// has had (choosing on one pass's scores measured worse on the dev split). A selected sentence brings its
/// neighbours in the document (not in the candidate list). At the end the evidence is scored once
/// more on its own, so that its scores read the same for every document, and the result says "not
/// found" when none of them reaches <see cref="InfiniteRetrieverOptions.NotFoundThreshold"/>.
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
        _layer = _options.Layer >= 0 ? _options.Layer : RetrievalLayerProbe.FindLayer(model, _options.ContextOptions);
        int contextSize = _options.ContextSize > 0 ? _options.ContextSize : model.TrainedContextLength;
        int batch = Math.Min(512, contextSize);
        // Scores only: reading needs nothing above the scoring layer, and the answer is generated
        // from a cleared cache (AnswerFromEvidenceAsync), so no layer left undefined is ever read.
        _capture = new AttentionCapture(model, [_layer],
            _options.ContextOptions with { ContextSize = contextSize, BatchSize = batch, MicroBatchSize = Math.Min(batch, _options.ContextOptions.MicroBatchSize) },
            new AttentionCaptureOptions { ScoresOnly = _options.StopAtScoringLayer });
        _calibrationTokens = model.Tokenizer.Tokenize(string.Format(QuestionFormat, CalibrationQuestion), addSpecial: false);
        _cacheBudget = _options.CacheTokens > 0 ? Math.Min(_options.CacheTokens, ContextSize / 2) : ContextSize / 4;
    }

    // The tail after the context; it ends where an answer would begin, so its rows look for one.
    internal const string QuestionFormat = "\nQuestion: {0}\nAnswer:";

    // The content-free question whose attention is what the model pays whatever is asked.
    internal const string CalibrationQuestion = "N/A";

    /// <summary>The layer whose attention scores tokens (chosen by the probe unless set).</summary>
    public int Layer => _layer;

    /// <summary>Tokens per forward pass.</summary>
    public int ContextSize => _capture.Context.ContextSize;

    /// <summary>The most bytes the attention capture held during the last retrieval.</summary>
    public long PeakCaptureBytes { get; private set; }

    /// <summary>Retrieves from a string.</summary>
    /// <exception cref="ArgumentException">The question or the document is empty or whitespace only.</exception>
    public Task<RetrievalResult> RetrieveAsync(string question, string document, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (string.IsNullOrWhiteSpace(document))
        {
            throw new ArgumentException(EmptyDocument, nameof(document));
        }
        return RetrieveCoreAsync(question, new StringReader(document), document.Length, progress, cancellationToken);
    }

    /// <summary>Retrieves from a text file (UTF-8 unless it starts with a UTF-16/32 byte-order mark), streamed.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentException">The path is a directory, or the file is empty, whitespace only or binary.</exception>
    public async Task<RetrievalResult> RetrieveFileAsync(string question, string path, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        using TextReader reader = OpenFile(path, out long length);
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
        return await AnswerIfFoundAsync(question, retrieval, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Retrieves from a file, then answers from the evidence (no answer when nothing was found).</summary>
    public async Task<AnswerResult> AnswerFileAsync(string question, string path, IProgress<RetrievalProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        RetrievalResult retrieval = await RetrieveFileAsync(question, path, progress, cancellationToken).ConfigureAwait(false);
        return await AnswerIfFoundAsync(question, retrieval, cancellationToken).ConfigureAwait(false);
    }

    private async Task<AnswerResult> AnswerIfFoundAsync(string question, RetrievalResult retrieval, CancellationToken cancellationToken) =>
        new(retrieval.Found ? await AnswerFromEvidenceAsync(question, retrieval, cancellationToken).ConfigureAwait(false) : null, retrieval);

    private const string EmptyDocument = "The document is empty or whitespace only; there is nothing to read.";

    // The RAG loader's checks (Heed.Text): binary files are refused, UTF-8 decoding replaces invalid bytes.
    private static TextReader OpenFile(string path, out long length)
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
        if (length == 0)
        {
            throw new ArgumentException($"'{path}' is empty; there is nothing to read.", nameof(path));
        }
        if (BinaryFileDetector.BinaryReason(path) is { } binary)
        {
            throw new ArgumentException($"'{path}' is not text ({binary}); pass a text file.", nameof(path));
        }
        return TextFileReader.Open(path).Reader;
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
    // Ordinal is its place among the document's sentences: neighbours are ordinals apart by one.
    private sealed class Piece(string text, long offset, long ordinal, int[] tokens)
    {
        public string Text { get; } = text;
        public long Offset { get; } = offset;
        public long Ordinal { get; } = ordinal;
        public int[] Tokens { get; } = tokens;

        // The best score any pass gave it: what the cache is chosen by (see ScoreAndSelect).
        public double BestScore { get; set; } = double.NegativeInfinity;
    }

    private RetrievalResult Read(TextReader document, long? totalChars, int[] questionTokens, int chunkBudget,
        IProgress<RetrievalProgress>? progress, CancellationToken cancellationToken)
    {
        var counted = new CountingTextReader(document);
        List<Piece> cache = [];
        List<Piece> chunk = [];
        int chunkTokens = 0, chunks = 0;
        long tokens = 0, ordinal = 0;
        PeakCaptureBytes = 0;

        void Flush()
        {
            cancellationToken.ThrowIfCancellationRequested();
            cache = ScoreAndSelect([.. cache, .. chunk], cache.Count, questionTokens, cancellationToken);
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
            chunk.Add(new Piece(text, offset, ordinal++, ids));
            chunkTokens += ids.Length;
        }
        if (chunk.Count > 0)
        {
            Flush();
        }
        if (chunks == 0)
        {
            throw new ArgumentException(EmptyDocument, nameof(document));
        }
        // The evidence is scored once more, alone: the last pass held a chunk of any length, and
        // the scores that decide "found" must read the same for every document.
        double[] scores = [];
        if (cache.Count > 0)
        {
            (double[] phrase, (int Start, int Length)[] spans) = ScorePass(cache, questionTokens, cancellationToken);
            scores = SentenceScores(phrase, spans);
        }
        _capture.Clear();
        IReadOnlyList<Evidence> evidence = cache.Select((p, i) => new Evidence(p.Text, scores[i], p.Offset, p.Text.Length)).ToList();
        bool found = evidence.Count > 0 && evidence.Max(e => e.Score) >= _options.NotFoundThreshold;
        return new RetrievalResult(evidence, chunks, tokens, found);
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

    // The calibrated phrase score of every context position in one pass over [pieces + question],
    // and each piece's token span in that context.
    private (double[] Phrase, (int Start, int Length)[] Spans) ScorePass(List<Piece> pieces, int[] questionTokens, CancellationToken cancellationToken)
    {
        var context = new List<int>(ContextSize) { _model.Tokenizer.BeginningOfSequence };
        var spans = new (int Start, int Length)[pieces.Count];
        for (int i = 0; i < pieces.Count; i++)
        {
            spans[i] = (context.Count, pieces[i].Tokens.Length);
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
        return (PhraseScores(tokenScore, _options.PhraseWidth), spans);
    }

    private List<Piece> ScoreAndSelect(List<Piece> pieces, int cachedCount, int[] questionTokens, CancellationToken cancellationToken)
    {
        (double[] phrase, (int Start, int Length)[] spans) = ScorePass(pieces, questionTokens, cancellationToken);
        double[] sentenceScore = SentenceScores(phrase, spans);

        // Cached sentences and new ones holding one of the top-K phrase positions are candidates,
        // ranked by the best score any pass gave them. Ranking on this pass's scores alone (one
        // scale) was measured on the dev split and lost needles that scored well in their own
        // chunk once fuller passes outscored them (found 0 of 3 where the best-score rule found 2),
        // so the best-score rule stays until a one-scale rule measures better.
        for (int i = 0; i < pieces.Count; i++)
        {
            pieces[i].BestScore = Math.Max(pieces[i].BestScore, sentenceScore[i]);
        }
        var top = new HashSet<int>(Enumerable.Range(1, phrase.Length - 1).OrderByDescending(t => phrase[t]).Take(_options.TopKTokens));
        var holdsTop = new bool[pieces.Count];
        for (int i = 0; i < pieces.Count; i++)
        {
            holdsTop[i] = i < cachedCount || Enumerable.Range(spans[i].Start, spans[i].Length).Any(top.Contains);
        }
        var candidates = pieces.Select((p, i) => new CacheCandidate(p.Ordinal, p.Tokens.Length, p.BestScore, holdsTop[i])).ToList();
        return SelectCache(candidates, _options.NeighborSentences, _cacheBudget).Select(i => pieces[i]).ToList();
    }

    internal readonly record struct CacheCandidate(long Ordinal, int Tokens, double Score, bool HoldsTopPhrase);

    // The next cache: sentences holding a top phrase, best first, each followed by its neighbours
    // in the document (ordinals one apart, when they are among the candidates), until the token
    // budget is full; returned as indices in document order.
    internal static List<int> SelectCache(IReadOnlyList<CacheCandidate> candidates, int neighbourSentences, int budget)
    {
        var indexOfOrdinal = new Dictionary<long, int>();
        for (int i = 0; i < candidates.Count; i++)
        {
            indexOfOrdinal[candidates[i].Ordinal] = i;
        }
        // A kept sentence brings its neighbours (ranked just after it): a fact often spans two
        // sentences ("The key is 7. Remember it.") and the answer needs both.
        var rank = new Dictionary<int, double>();
        for (int i = 0; i < candidates.Count; i++)
        {
            if (!candidates[i].HoldsTopPhrase)
            {
                continue;
            }
            for (long distance = -neighbourSentences; distance <= neighbourSentences; distance++)
            {
                if (indexOfOrdinal.TryGetValue(candidates[i].Ordinal + distance, out int n))
                {
                    double r = candidates[i].Score - 1e-9 * Math.Abs(distance);
                    rank[n] = Math.Max(rank.GetValueOrDefault(n, double.MinValue), r);
                }
            }
        }
        var kept = new List<int>();
        int used = 0;
        foreach (int i in rank.OrderByDescending(kv => kv.Value).Select(kv => kv.Key))
        {
            if (used + candidates[i].Tokens <= budget)
            {
                kept.Add(i);
                used += candidates[i].Tokens;
            }
        }
        return kept.OrderBy(i => candidates[i].Ordinal).ToList();
    }

    // Attention per context position from the tail's rows at the scoring layer.
    private double[] QuestionAttention(int[] tail, int questionStart, CancellationToken cancellationToken)
    {
        _capture.Evaluate(tail, keepQueries: true, keepKeys: true, cancellationToken);
        PeakCaptureBytes = Math.Max(PeakCaptureBytes, _capture.BytesHeld);
        return TokenShares(_capture, _layer, tail.Length, questionStart, _options.Device);
    }

    // Per context position before questionStart: the share of a tail row's attention it gets,
    // averaged over heads and the tail's rows, so scores read the same for any head count.
    internal static double[] TokenShares(AttentionCapture capture, int layer, int tailLength, int questionStart, AttentionDevice device)
    {
        float[] mass = capture.Aggregate(layer, questionStart, -1, device);
        int[] positions = capture.KeyPositions(layer);
        double rows = (double)tailLength * capture.GetStats(layer).Heads;
        double[] share = new double[questionStart];
        for (int j = 0; j < positions.Length; j++)
        {
            if (positions[j] < questionStart)
            {
                share[positions[j]] = mass[j] / rows;
            }
        }
        return share;
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

    // A sentence scores its best phrase.
    internal static double[] SentenceScores(double[] phrase, IReadOnlyList<(int Start, int Length)> spans) =>
        spans.Select(s => s.Length == 0 ? double.MinValue : phrase.AsSpan(s.Start, s.Length).ToArray().Max()).ToArray();

    /// <summary>
    /// Generates an answer to the question from evidence retrieved before. It generates even when
    /// <see cref="RetrievalResult.Found"/> is false; <see cref="AnswerAsync"/> does not.
    /// </summary>
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
