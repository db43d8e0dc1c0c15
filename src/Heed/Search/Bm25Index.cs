namespace Heed.Search;

/// <summary>
/// An immutable Okapi BM25 index over a list of documents. For a query q with distinct terms t (each counted once):
/// score(D) = Σ_t IDF(t) · tf(t,D)·(k1+1) / (tf(t,D) + k1·(1 − b + b·|D|/avgdl)), with
/// IDF(t) = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5)) (the always-positive form Lucene uses), N the number of documents,
/// n(t) how many contain t, |D| a document's term count and avgdl the mean of |D|. Terms come from
/// <see cref="Bm25Tokenizer"/>. Thread-safe for reading.
/// </summary>
public sealed class Bm25Index
{
    /// <summary>The usual term-frequency saturation, 1.2.</summary>
    public const double DefaultK1 = 1.2;

    /// <summary>The usual length normalization, 0.75.</summary>
    public const double DefaultB = 0.75;

    private readonly Dictionary<string, int> _termIds = new(StringComparer.Ordinal);
    private readonly List<List<Posting>> _postings = [];
    private readonly int[] _lengths;

    /// <summary>Indexes <paramref name="documents"/>; a document's number is its position in the list.</summary>
    /// <param name="documents">The texts; may be empty (every search then finds nothing).</param>
    /// <param name="tokenizer">How texts become terms; null: no stop words.</param>
    /// <param name="k1">Term-frequency saturation, 0 or more.</param>
    /// <param name="b">Length normalization, 0 to 1.</param>
    public Bm25Index(IReadOnlyList<string> documents, Bm25Tokenizer? tokenizer = null, double k1 = DefaultK1, double b = DefaultB)
    {
        ArgumentNullException.ThrowIfNull(documents);
        if (!(k1 >= 0) || double.IsInfinity(k1))
        {
            throw new ArgumentOutOfRangeException(nameof(k1), k1, "k1 must be a finite number of 0 or more (1.2 is usual).");
        }
        if (!(b is >= 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(b), b, "b must be between 0 and 1 (0.75 is usual).");
        }
        Tokenizer = tokenizer ?? new Bm25Tokenizer();
        K1 = k1;
        B = b;
        _lengths = new int[documents.Count];
        var counts = new Dictionary<int, int>();
        Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> ids = _termIds.GetAlternateLookup<ReadOnlySpan<char>>();
        long total = 0;
        for (int d = 0; d < documents.Count; d++)
        {
            string lower = Bm25Tokenizer.Lower(documents[d] ?? throw new ArgumentException($"Document {d} is null.", nameof(documents)));
            List<Range> terms = Tokenizer.TermRanges(lower);
            counts.Clear();
            foreach (Range range in terms)
            {
                ReadOnlySpan<char> term = lower.AsSpan(range);
                if (!ids.TryGetValue(term, out int id))
                {
                    id = _postings.Count;
                    ids[term] = id;
                    _postings.Add([]);
                }
                counts[id] = counts.GetValueOrDefault(id) + 1;
            }
            foreach ((int id, int tf) in counts)
            {
                _postings[id].Add(new Posting(d, tf));
            }
            _lengths[d] = terms.Count;
            total += terms.Count;
        }
        AverageDocumentLength = documents.Count == 0 ? 0 : (double)total / documents.Count;
    }

    /// <summary>The tokenizer documents and queries go through.</summary>
    public Bm25Tokenizer Tokenizer { get; }

    /// <summary>Term-frequency saturation.</summary>
    public double K1 { get; }

    /// <summary>Length normalization.</summary>
    public double B { get; }

    /// <summary>N, the number of documents.</summary>
    public int DocumentCount => _lengths.Length;

    /// <summary>avgdl, the mean number of terms per document.</summary>
    public double AverageDocumentLength { get; }

    /// <summary>|D|, the number of terms of one document (after stop words).</summary>
    public int DocumentLength(int document) => _lengths[document];

    /// <summary>n(t), how many documents contain a term (lowercased first).</summary>
    public int DocumentFrequency(string term)
    {
        ArgumentNullException.ThrowIfNull(term);
        return _termIds.TryGetValue(term.ToLowerInvariant(), out int id) ? _postings[id].Count : 0;
    }

    /// <summary>The BM25 score of one document for a query (0 when they share no term).</summary>
    public double Score(string query, int document)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfNegative(document);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(document, DocumentCount);
        double score = 0;
        foreach (int id in QueryTermIds(query))
        {
            foreach (Posting p in _postings[id])
            {
                if (p.Document == document)
                {
                    score += TermScore(id, p);
                }
            }
        }
        return score;
    }

    /// <summary>The best documents for a query, highest score first (ties: lower document number first).</summary>
    /// <param name="query">Free text; terms not in the index are ignored.</param>
    /// <param name="topK">How many to return at most (1 or more).</param>
    /// <returns>Only documents with a score above 0, so possibly fewer than <paramref name="topK"/>.</returns>
    public IReadOnlyList<Bm25Hit> Search(string query, int topK)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        var scores = new Dictionary<int, double>();
        foreach (int id in QueryTermIds(query))
        {
            foreach (Posting p in _postings[id])
            {
                scores[p.Document] = scores.GetValueOrDefault(p.Document) + TermScore(id, p);
            }
        }
        return scores
            .Where(s => s.Value > 0)
            .OrderByDescending(s => s.Value).ThenBy(s => s.Key)
            .Take(topK)
            .Select(s => new Bm25Hit(s.Key, s.Value))
            .ToList();
    }

    private IEnumerable<int> QueryTermIds(string query)
    {
        string lower = Bm25Tokenizer.Lower(query);
        var seen = new HashSet<int>();
        foreach (Range range in Tokenizer.TermRanges(lower))
        {
            if (_termIds.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(lower.AsSpan(range), out int id) && seen.Add(id))
            {
                yield return id;
            }
        }
    }

    private double TermScore(int termId, Posting posting)
    {
        double n = _postings[termId].Count;
        double idf = Math.Log(1 + (DocumentCount - n + 0.5) / (n + 0.5));
        double tf = posting.Frequency;
        double norm = K1 * (1 - B + B * _lengths[posting.Document] / AverageDocumentLength);
        return idf * tf * (K1 + 1) / (tf + norm);
    }

    private readonly record struct Posting(int Document, int Frequency);
}

/// <summary>A document found by <see cref="Bm25Index.Search"/>.</summary>
/// <param name="Document">Its position in the indexed list.</param>
/// <param name="Score">Its BM25 score (above 0).</param>
public readonly record struct Bm25Hit(int Document, double Score);
