using System.Text;

namespace Heed.Retrieval;

/// <summary>
/// Streams sentences out of a <see cref="TextReader"/> with their character offsets, holding
/// at most one sentence in memory. A sentence ends after '.', '!' or '?' followed by
/// whitespace, at a blank line, or at <see cref="MaxSentenceChars"/> (at the last space before
/// it when there is one), so no single "sentence" can outgrow a chunk.
/// </summary>
public sealed class SentenceReader(TextReader reader, int maxSentenceChars = 400)
{
    /// <summary>The longest sentence returned, in characters.</summary>
    public int MaxSentenceChars { get; } = maxSentenceChars > 16 ? maxSentenceChars
        : throw new ArgumentOutOfRangeException(nameof(maxSentenceChars), maxSentenceChars, "Must be more than 16 characters.");

    /// <summary>Characters read from the source so far.</summary>
    public long CharactersRead { get; private set; }

    /// <summary>A sentence: its text (trimmed) and where it starts and how long it is in the source.</summary>
    public readonly record struct Sentence(string Text, long Offset, int Length);

    /// <summary>The sentences in order; empty ones (only whitespace) are skipped.</summary>
    public IEnumerable<Sentence> ReadAll()
    {
        var current = new StringBuilder();
        long start = 0;
        int next = reader.Read();
        while (next >= 0)
        {
            char c = (char)next;
            current.Append(c);
            CharactersRead++;
            next = reader.Read();
            bool atSpace = next < 0 || char.IsWhiteSpace((char)next);
            bool end = (c is '.' or '!' or '?' && atSpace)
                       || (c == '\n' && next == '\n')
                       || current.Length >= MaxSentenceChars;
            if (!end)
            {
                continue;
            }
            int cut = current.Length;
            if (current.Length >= MaxSentenceChars && c is not ('.' or '!' or '?' or '\n'))
            {
                int space = LastSpace(current);
                cut = space > MaxSentenceChars / 2 ? space + 1 : current.Length;
            }
            string text = current.ToString(0, cut);
            string rest = current.ToString(cut, current.Length - cut);
            if (Make(text, start) is { } sentence)
            {
                yield return sentence;
            }
            start += cut;
            current.Clear().Append(rest);
        }
        if (Make(current.ToString(), start) is { } last)
        {
            yield return last;
        }
    }

    private static int LastSpace(StringBuilder text)
    {
        for (int i = text.Length - 1; i >= 0; i--)
        {
            if (char.IsWhiteSpace(text[i]))
            {
                return i;
            }
        }
        return -1;
    }

    private static Sentence? Make(string raw, long offset)
    {
        int lead = 0;
        while (lead < raw.Length && char.IsWhiteSpace(raw[lead]))
        {
            lead++;
        }
        string text = raw.Trim();
        return text.Length == 0 ? null : new Sentence(text, offset + lead, text.Length);
    }
}
