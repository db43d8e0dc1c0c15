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
/// Choices, following the authors' reference code: the query rows are the whole tail after the
/// documents (the query instruction, "Query:" and the query) and their attention is averaged over
/// rows, summed over layers and heads; per document token the calibrated score q − n is kept only
/// where it is above mean − 2·std of the document's calibrated scores (drops outlier tokens such
/// as delimiters), and the document's score is the sum over kept tokens. Documents that do not fit
/// in one context are packed into consecutive windows, each with the same instruction and query
/// and its own calibration, so scores stay comparable across windows. The calibration query is
/// decoded first and the real query reuses the documents' cache after the calibration tail is
/// removed.
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

        RerankPrompt prompt = RerankPrompt.Build(_model.Tokenizer, _options, query, documents, ContextSize);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            double[] scores = new double[documents.Count];
            foreach (RerankPrompt.Window window in prompt.Windows)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double[] windowScores = await Task.Run(() => ScoreWindow(prompt, window, cancellationToken), cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < window.Documents.Count; i++)
                {
                    scores[window.Documents[i].Index] = windowScores[i];
                }
            }
            IEnumerable<RankedDocument> ranked = scores
                .Select((score, index) => new RankedDocument(index, documents[index], score))
                .OrderByDescending(d => d.Score)
                .ThenBy(d => d.Index);
            return (topK is { } k ? ranked.Take(k) : ranked).ToList();
        }
        finally
        {
            _gate.Release();
        }
    }

    private double[] ScoreWindow(RerankPrompt prompt, RerankPrompt.Window window, CancellationToken cancellationToken)
    {
        _capture.Clear();
        _capture.Evaluate(window.Tokens, keepQueries: false, keepKeys: true, cancellationToken);
        int tailStart = _capture.NextPosition;

        _capture.Evaluate(prompt.CalibrationTail, keepQueries: true, keepKeys: true, cancellationToken);
        double[] calibration = MassPerPosition(tailStart, prompt.CalibrationTail.Length);
        _capture.RemoveTokens(tailStart);

        _capture.Evaluate(prompt.QueryTail, keepQueries: true, keepKeys: true, cancellationToken);
        double[] attention = MassPerPosition(tailStart, prompt.QueryTail.Length);
        _capture.Clear();

        double[] scores = new double[window.Documents.Count];
        for (int i = 0; i < window.Documents.Count; i++)
        {
            RerankPrompt.DocumentSpan span = window.Documents[i];
            scores[i] = CalibratedScore(attention.AsSpan(span.Start, span.Length), calibration.AsSpan(span.Start, span.Length));
        }
        return scores;
    }

    // Mean over query rows of the attention each position receives, summed over layers and heads.
    private double[] MassPerPosition(int queryStart, int queryRows)
    {
        double[] total = new double[queryStart];
        foreach (int layer in _capture.Layers)
        {
            float[] mass = _capture.Aggregate(layer, queryStart, -1, _options.Device);
            int[] positions = _capture.KeyPositions(layer);
            for (int j = 0; j < positions.Length; j++)
            {
                if (positions[j] < queryStart)
                {
                    total[positions[j]] += mass[j] / queryRows;
                }
            }
        }
        return total;
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
