using System.Globalization;
using System.Text;

namespace Heed.Search;

/// <summary>
/// How BM25 sees text: lowercased (invariant culture), split into terms that are maximal runs of Unicode letters
/// and digits (combining marks stay inside a term, so "naïve" in decomposed form is one term); everything else
/// separates terms ("can't" is "can" and "t", "3.14" is "3" and "14"). Terms in the optional stop-word list are
/// dropped and do not count towards a document's length.
/// </summary>
public sealed class Bm25Tokenizer
{
    private readonly HashSet<string>? _stopWords;

    /// <summary>Creates a tokenizer.</summary>
    /// <param name="stopWords">Terms to drop (matched after lowercasing); null or empty keeps every term.</param>
    public Bm25Tokenizer(IEnumerable<string>? stopWords = null)
    {
        if (stopWords is not null)
        {
            _stopWords = new HashSet<string>(stopWords.Select(w => w.ToLowerInvariant()), StringComparer.Ordinal);
            if (_stopWords.Count == 0)
            {
                _stopWords = null;
            }
        }
    }

    /// <summary>A short English stop-word list (articles, pronouns, auxiliaries, common prepositions).</summary>
    public static IReadOnlyList<string> EnglishStopWords { get; } =
    [
        "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "had", "has", "have", "he", "her",
        "his", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or", "our", "she", "so", "than", "that", "the",
        "their", "them", "then", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "which",
        "who", "will", "with", "you", "your",
    ];

    /// <summary>The stop words in use (empty when none).</summary>
    public IReadOnlyCollection<string> StopWords => (IReadOnlyCollection<string>?)_stopWords ?? [];

    /// <summary>The terms of a text, in order, repeats included.</summary>
    public IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var terms = new List<string>();
        string lower = text.ToLowerInvariant();
        foreach (Range range in TermRanges(lower))
        {
            terms.Add(lower[range]);
        }
        return terms;
    }

    /// <summary>Where the kept terms of an already lowercased text are.</summary>
    internal List<Range> TermRanges(string lower)
    {
        var ranges = new List<Range>();
        HashSet<string>.AlternateLookup<ReadOnlySpan<char>> stop = _stopWords?.GetAlternateLookup<ReadOnlySpan<char>>() ?? default;
        int i = 0;
        while (i < lower.Length)
        {
            int width = TermCharWidth(lower, i, atStart: true);
            if (width == 0)
            {
                i += char.IsSurrogatePair(lower, i) ? 2 : 1;
                continue;
            }
            int start = i;
            i += width;
            while (i < lower.Length && (width = TermCharWidth(lower, i, atStart: false)) > 0)
            {
                i += width;
            }
            if (_stopWords is null || !stop.Contains(lower.AsSpan(start, i - start)))
            {
                ranges.Add(start..i);
            }
        }
        return ranges;
    }

    /// <summary>Lowercases the way <see cref="Tokenize"/> does (length-preserving).</summary>
    internal static string Lower(string text) => text.ToLowerInvariant();

    /// <summary>Code units taken by the term character at <paramref name="i"/>, or 0 when it is a separator.</summary>
    private static int TermCharWidth(string s, int i, bool atStart)
    {
        if (char.IsSurrogatePair(s, i))
        {
            Rune rune = Rune.GetRuneAt(s, i);
            return Rune.IsLetterOrDigit(rune) || (!atStart && IsMark(Rune.GetUnicodeCategory(rune))) ? 2 : 0;
        }
        char c = s[i];
        if (char.IsLetterOrDigit(c))
        {
            return 1;
        }
        return !atStart && IsMark(char.GetUnicodeCategory(c)) ? 1 : 0;
    }

    private static bool IsMark(UnicodeCategory category) =>
        category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;
}
