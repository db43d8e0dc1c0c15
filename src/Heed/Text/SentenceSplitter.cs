namespace Heed.Text;

/// <summary>
/// Finds sentences in text. A sentence ends at a line break, or at '.', '!', '?', '…' (or the CJK full stops)
/// followed by whitespace, with closing quotes and brackets kept in the sentence. A period does not end a sentence
/// inside a number ("3.14"), after a known abbreviation ("e.g.", "Dr.", "etc." before a lowercase word), after a
/// single capital initial ("J. Smith"), after dotted letters ("U.S."), or when the next word starts lowercase.
/// Sentences are trimmed of surrounding whitespace; empty ones are dropped.
/// </summary>
public static class SentenceSplitter
{
    private static readonly HashSet<string> Abbreviations = new(StringComparer.Ordinal)
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "cf", "fig", "figs", "eq", "eqs", "no",
        "nos", "vol", "vols", "approx", "dept", "est", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun",
        "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ave", "rd", "blvd", "gen", "col", "lt", "sgt", "capt",
        "rev", "hon", "al", "p", "pp", "ch", "sec", "viz", "resp", "ca",
    };

    /// <summary>The sentences of a text as spans of it, in order.</summary>
    public static IReadOnlyList<SentenceSpan> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var spans = new List<SentenceSpan>();
        Scan(text, isFinal: true, spans);
        return spans;
    }

    /// <summary>
    /// Appends the sentences of <paramref name="text"/> to <paramref name="spans"/>. When the text is not the end
    /// of the input (<paramref name="isFinal"/> false), the last sentence may be incomplete: it is not appended and
    /// the return value is where it starts, so a streaming caller can keep that tail and scan it again with more text.
    /// Whatever precedes the returned index has been decided exactly as a scan of the whole input would decide it.
    /// </summary>
    internal static int Scan(ReadOnlySpan<char> text, bool isFinal, List<SentenceSpan> spans)
    {
        int n = text.Length;
        int segmentStart = 0;
        int i = 0;
        while (i < n)
        {
            char c = text[i];
            if (c is '\n' or '\r' or '\u2028' or '\u2029')
            {
                Emit(text, segmentStart, i, spans);
                segmentStart = i + 1;
                i++;
                continue;
            }
            if (!IsTerminator(c))
            {
                i++;
                continue;
            }
            int runEnd = i;
            bool onlyPeriods = true;
            while (runEnd < n && IsTerminator(text[runEnd]))
            {
                onlyPeriods &= text[runEnd] == '.';
                runEnd++;
            }
            int end = runEnd;
            while (end < n && IsCloser(text[end]))
            {
                end++;
            }
            if (end == n)
            {
                break; // undecided until more text comes (or the end of the input closes the sentence anyway)
            }
            if (!char.IsWhiteSpace(text[end]))
            {
                i = end; // "3.14", "e.g.x", "example.com": no break without whitespace
                continue;
            }
            int next = end;
            while (next < n && char.IsWhiteSpace(text[next]) && text[next] is not ('\n' or '\r'))
            {
                next++;
            }
            if (next == n && !isFinal)
            {
                break; // the next word decides (lowercase continues the sentence)
            }
            bool lineBreakFollows = next < n && text[next] is '\n' or '\r';
            if (onlyPeriods && !lineBreakFollows && next < n && ContinuesAfterPeriod(text, segmentStart, i, runEnd - i, text[next]))
            {
                i = end;
                continue;
            }
            Emit(text, segmentStart, end, spans);
            segmentStart = end;
            i = end;
        }
        if (!isFinal)
        {
            return segmentStart;
        }
        Emit(text, segmentStart, n, spans);
        return n;
    }

    private static bool ContinuesAfterPeriod(ReadOnlySpan<char> text, int segmentStart, int period, int periods, char nextChar)
    {
        if (char.IsLower(nextChar))
        {
            return true;
        }
        if (periods > 1)
        {
            return false; // an ellipsis before a capital ends the sentence
        }
        int wordStart = period;
        while (wordStart > segmentStart && !char.IsWhiteSpace(text[wordStart - 1]))
        {
            wordStart--;
        }
        ReadOnlySpan<char> word = text[wordStart..period].TrimStart("([{\"'“‘«");
        if (word.IsEmpty)
        {
            return false;
        }
        if (word.Length == 1 && char.IsUpper(word[0]))
        {
            return true; // an initial: "J. Smith"
        }
        if (IsDottedLetters(word))
        {
            return true; // "U.S", "e.g", "i.e"
        }
        Span<char> lower = word.Length <= 16 ? stackalloc char[word.Length] : new char[word.Length];
        word.ToLowerInvariant(lower);
        return Abbreviations.GetAlternateLookup<ReadOnlySpan<char>>().Contains(lower);
    }

    /// <summary>Letters of at most two characters separated by single dots, at least one dot: "U.S", "e.g", "Ph.D".</summary>
    private static bool IsDottedLetters(ReadOnlySpan<char> word)
    {
        if (!word.Contains('.'))
        {
            return false;
        }
        foreach (Range part in word.Split('.'))
        {
            ReadOnlySpan<char> p = word[part];
            if (p.Length is 0 or > 2)
            {
                return false;
            }
            foreach (char c in p)
            {
                if (!char.IsLetter(c))
                {
                    return false;
                }
            }
        }
        return true;
    }

    private static bool IsTerminator(char c) => c is '.' or '!' or '?' or '…' or '。' or '！' or '？';

    private static bool IsCloser(char c) => c is '"' or '\'' or ')' or ']' or '}' or '”' or '’' or '»';

    private static void Emit(ReadOnlySpan<char> text, int start, int end, List<SentenceSpan> spans)
    {
        while (start < end && char.IsWhiteSpace(text[start]))
        {
            start++;
        }
        while (end > start && char.IsWhiteSpace(text[end - 1]))
        {
            end--;
        }
        if (end > start)
        {
            spans.Add(new SentenceSpan(start, end - start));
        }
    }
}
