using Heed.Attention;
using Heed.Llama;

namespace Heed.Ranking;

/// <summary>
/// In-context re-ranking (Chen et al. 2024, "Attention in LLMs yields efficient zero-shot
/// re-rankers"): all documents go into one prompt, then the query; a document's score is the
/// attention the query tokens pay to its tokens, over all layers and heads, minus the same for a
/// content-free query ("N/A") decoded on the same cache. Two forward passes over the documents'
/// cache for N documents, never N generations.
/// </summary>
/// <remarks>
/// <para>
/// The prompt is the instruction, the documents as "[k] text", then the query instruction,
/// "Query:" and the query; with <see cref="InContextRerankerOptions.UseChatTemplate"/> it opens the
/// user turn of the model's chat template when llama.cpp knows the template. BOS comes first only
/// where the model's vocabulary adds it.
/// </para>
/// <para>
/// Rows read (default): only the query's own rows, after the instruction and "Query:" that the
/// query and the calibration query share. Those shared rows see the same tokens at the same
/// positions in both passes, so leaving them out of both is exact cancellation; averaging them
/// into tails of different lengths (as the authors do) leaves (1/n_query − 1/n_calibration) times
/// their mass, which lands mostly on the last document. Per row the attention is summed over
/// layers and heads and averaged over the rows. Per document token the calibrated value
/// query − calibration is kept where it is above mean − 2·std (sample std) of the document's
/// values, and the document's score is the sum of the kept values over its own tokens (its "[k]"
/// delimiter is not scored). <see cref="InContextRerankerOptions.UsePaperConvention"/> reads the
/// whole tail and scores the delimiter with the document, as the authors' reference code does.
/// </para>
/// <para>
/// Documents that do not fit in one context are packed into consecutive windows, each with the
/// same instruction, query and its own calibration. A score depends on what shares its window (a
/// document alone in a window scores on another scale than among sixteen), so window scores are
/// not merged as they are: the best documents of every window, taken in turns by rank as long as
/// they fit, are scored again side by side in one window (recursively while even the best of each
/// window do not fit in one), and their scores from that window lead the ranking. The others
/// follow, each shifted by the mean change its window's finalists saw and kept below every
/// finalist. Windows cost one more pair of passes over the finalists.
/// </para>
/// </remarks>
public sealed class InContextReranker : IDocumentReranker, IDisposable
{
    private readonly IInferenceEngine _model;
    private readonly InContextRerankerOptions _options;
    private readonly AttentionCapture _capture;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Creates a reranker with its own context over <paramref name="model"/> (Heed's or another engine's).</summary>
    public InContextReranker(IInferenceEngine model, InContextRerankerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? new InContextRerankerOptions();
        _options.Validate();
        _model = model;
        int contextSize = _options.ContextSize > 0 ? _options.ContextSize : model.TrainedContextLength;
        int batch = Math.Min(512, contextSize);
        _capture = new AttentionCapture(model, _options.Layers,
            _options.ContextOptions with { ContextSize = contextSize, BatchSize = batch, MicroBatchSize = Math.Min(batch, _options.ContextOptions.MicroBatchSize) },
            new AttentionCaptureOptions { StoreHalfPrecision = _options.StoreHalfPrecision });
    }

    /// <summary>Tokens one window holds.</summary>
    public int ContextSize => _capture.Context.ContextSize;

    /// <summary>Bytes the attention capture holds now.</summary>
    public long CaptureBytes => _capture.BytesHeld;

    /// <inheritdoc />
    public async Task<IReadOnlyList<RankedDocument>> RerankAsync(string query, IReadOnlyList<string> documents, int? topK = null,
        CancellationToken cancellationToken = default)
    {
        ValidateInput(query, documents, topK);

        RerankPrompt prompt = RerankPrompt.Build(_model, _options, query, ContextSize);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            double[] scores = await Task.Run(() => Score(prompt, documents, Enumerable.Range(0, documents.Count).ToArray(),
                window => ScoreWindow(prompt, window, cancellationToken), cancellationToken), cancellationToken).ConfigureAwait(false);
            return Ranked(documents, scores, topK);
        }
        finally
        {
            _gate.Release();
        }
    }

    // Scores documents[indices] (result in the order of indices). One window: its calibrated
    // scores. Several windows: their scores are not on one scale (a document's score depends on
    // what shares its window), so the best of every window, taken in turns by rank as long as
    // they fit, are scored again together in one window (recursively, if even the best of each
    // do not fit). Everything else follows them, shifted by the change its window's finalists saw.
    internal static double[] Score(RerankPrompt prompt, IReadOnlyList<string> documents, int[] indices,
        Func<RerankPrompt.Window, double[]> scoreWindow, CancellationToken cancellationToken)
    {
        List<RerankPrompt.Window> windows = prompt.Pack(documents, indices);
        var scoreOf = new Dictionary<int, double>();
        foreach (RerankPrompt.Window window in windows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            double[] windowScores = scoreWindow(window);
            for (int i = 0; i < window.Documents.Count; i++)
            {
                scoreOf[window.Documents[i].Index] = windowScores[i];
            }
        }
        if (windows.Count > 1)
        {
            MergeWindows(prompt, documents, windows, scoreOf, scoreWindow, cancellationToken);
        }
        return indices.Select(i => scoreOf[i]).ToArray();
    }

    private static void MergeWindows(RerankPrompt prompt, IReadOnlyList<string> documents, List<RerankPrompt.Window> windows,
        Dictionary<int, double> scoreOf, Func<RerankPrompt.Window, double[]> scoreWindow, CancellationToken cancellationToken)
    {
        int[][] byRank = windows
            .Select(w => w.Documents.Select(d => d.Index).OrderByDescending(i => scoreOf[i]).ThenBy(i => i).ToArray())
            .ToArray();
        int[] inTurns = Enumerable.Range(0, byRank.Max(w => w.Length))
            .SelectMany(rank => byRank.Where(w => rank < w.Length).Select(w => w[rank]))
            .ToArray();
        int[] finalists = prompt.PackOne(documents, inTurns).Documents.Select(d => d.Index).ToArray();
        if (finalists.Length < windows.Count)
        {
            finalists = byRank.Select(w => w[0]).ToArray();
            if (finalists.Length == inTurns.Length)
            {
                return; // every document fills a window alone: there is nothing to score side by side
            }
        }

        double[] finalScores = Score(prompt, documents, finalists, scoreWindow, cancellationToken);
        var finalScoreOf = finalists.Zip(finalScores).ToDictionary(p => p.First, p => p.Second);
        double belowFinalists = Math.BitDecrement(finalScores.Min());
        foreach (int[] window in byRank)
        {
            int[] anchors = window.Where(finalScoreOf.ContainsKey).ToArray();
            double shift = anchors.Average(i => finalScoreOf[i] - scoreOf[i]);
            foreach (int i in window)
            {
                scoreOf[i] = finalScoreOf.TryGetValue(i, out double final) ? final : Math.Min(scoreOf[i] + shift, belowFinalists);
            }
        }
    }

    private double[] ScoreWindow(RerankPrompt prompt, RerankPrompt.Window window, CancellationToken cancellationToken)
    {
        _capture.Clear();
        _capture.Evaluate(window.Tokens, keepQueries: false, keepKeys: true, cancellationToken);
        int tailStart = _capture.NextPosition;
        double[] calibration = TailAttention(_capture, _options, prompt.Calibration, tailStart, cancellationToken);
        _capture.RemoveTokens(tailStart);
        double[] attention = TailAttention(_capture, _options, prompt.Query, tailStart, cancellationToken);
        _capture.Clear();
        return WindowScores(window, attention, calibration);
    }

    internal static double[] WindowScores(RerankPrompt.Window window, double[] attention, double[] calibration)
    {
        double[] scores = new double[window.Documents.Count];
        for (int i = 0; i < window.Documents.Count; i++)
        {
            RerankPrompt.DocumentSpan span = window.Documents[i];
            scores[i] = CalibratedScore(attention.AsSpan(span.Start, span.Length), calibration.AsSpan(span.Start, span.Length));
        }
        return scores;
    }

    // Decodes a tail after the documents; returns, per position before it, the mean over the
    // tail's read rows of the attention the position receives, summed over layers and heads.
    internal static double[] TailAttention(AttentionCapture capture, InContextRerankerOptions options, RerankPrompt.Tail tail, int tailStart,
        CancellationToken cancellationToken)
    {
        capture.Evaluate(tail.Tokens, keepQueries: true, keepKeys: true, cancellationToken);
        int rowsStart = tailStart + tail.RowsStart;
        double[] total = new double[tailStart];
        foreach (int layer in capture.Layers)
        {
            float[] mass = capture.Aggregate(layer, rowsStart, -1, options.Device);
            int[] positions = capture.KeyPositions(layer);
            for (int j = 0; j < positions.Length; j++)
            {
                if (positions[j] < tailStart)
                {
                    total[positions[j]] += mass[j] / tail.Rows;
                }
            }
        }
        return total;
    }

    internal static void ValidateInput(string query, IReadOnlyList<string> documents, int? topK)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(documents);
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new ArgumentException("The query is empty; give the text to rank the documents against.", nameof(query));
        }
        if (documents.Count == 0)
        {
            throw new ArgumentException("There are no documents to rank; pass at least one.", nameof(documents));
        }
        for (int i = 0; i < documents.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(documents[i]))
            {
                throw new ArgumentException($"Document {i} is empty or only whitespace; remove it or give it text.", nameof(documents));
            }
        }
        if (topK is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "topK must be positive (or null for all).");
        }
    }

    internal static List<RankedDocument> Ranked(IReadOnlyList<string> documents, double[] scores, int? topK)
    {
        IEnumerable<RankedDocument> ranked = scores
            .Select((score, index) => new RankedDocument(index, documents[index], score))
            .OrderByDescending(d => d.Score)
            .ThenBy(d => d.Index);
        return (topK is { } k ? ranked.Take(k) : ranked).ToList();
    }

    internal static double CalibratedScore(ReadOnlySpan<double> attention, ReadOnlySpan<double> calibration)
    {
        int n = attention.Length;
        double[] calibrated = new double[n];
        double mean = 0;
        for (int t = 0; t < n; t++)
        {
            calibrated[t] = attention[t] - calibration[t];
            mean += calibrated[t];
        }
        mean /= n;
        double variance = 0;
        for (int t = 0; t < n; t++)
        {
            variance += (calibrated[t] - mean) * (calibrated[t] - mean);
        }
        double std = n > 1 ? Math.Sqrt(variance / (n - 1)) : 0;
        double threshold = mean - 2 * std;
        double score = 0;
        for (int t = 0; t < n; t++)
        {
            if (n == 1 || calibrated[t] > threshold)
            {
                score += calibrated[t];
            }
        }
        return score;
    }

    /// <summary>Frees the reranker's context and capture.</summary>
    public void Dispose()
    {
        _capture.Dispose();
        _gate.Dispose();
    }
}
