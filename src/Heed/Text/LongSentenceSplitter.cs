namespace Heed.Text;

/// <summary>
/// Cuts a sentence that alone exceeds the token budget into pieces that fit: at word boundaries (whitespace), and
/// inside a word only when that single word is over budget (never between the halves of a surrogate pair).
/// Every piece is checked with the real token counter, not just estimated.
/// </summary>
internal static class LongSentenceSplitter
{
    public static IEnumerable<(long Start, string Text)> Split(StreamedSentence sentence, int budget, Func<string, int> countTokens)
    {
        string text = sentence.Text;
        List<(int Start, int End)> words = Words(text);
        // each word counted once, with the whitespace before it: close to its share of a piece's tokens
        int[] estimates = new int[words.Count];
        for (int w = 0; w < words.Count; w++)
        {
            int from = w == 0 ? words[w].Start : words[w - 1].End;
            estimates[w] = countTokens(text[from..words[w].End]);
        }
        int i = 0;
        while (i < words.Count)
        {
            int j = i;
            long estimate = 0;
            while (j < words.Count && (j == i || estimate + estimates[j] <= budget))
            {
                estimate += estimates[j];
                j++;
            }
            string piece = text[words[i].Start..words[j - 1].End];
            int tokens = countTokens(piece);
            while (tokens > budget && j > i + 1)
            {
                j--;
                piece = text[words[i].Start..words[j - 1].End];
                tokens = countTokens(piece);
            }
            if (tokens > budget)
            {
                foreach ((int offset, string part) in SplitWord(piece, budget, countTokens))
                {
                    yield return (sentence.Start + words[i].Start + offset, part);
                }
            }
            else
            {
                yield return (sentence.Start + words[i].Start, piece);
            }
            i = j;
        }
    }

    private static List<(int Start, int End)> Words(string text)
    {
        var words = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }
            int start = i;
            while (i < text.Length && !char.IsWhiteSpace(text[i]))
            {
                i++;
            }
            if (i > start)
            {
                words.Add((start, i));
            }
        }
        return words;
    }

    /// <summary>The longest prefixes that fit, found by binary search (token counts grow with prefix length).</summary>
    private static IEnumerable<(int Offset, string Text)> SplitWord(string word, int budget, Func<string, int> countTokens)
    {
        int position = 0;
        while (position < word.Length)
        {
            int low = 1, high = word.Length - position, best = 0;
            while (low <= high)
            {
                int mid = low + (high - low) / 2;
                if (countTokens(word.Substring(position, mid)) <= budget)
                {
                    best = mid;
                    low = mid + 1;
                }
                else
                {
                    high = mid - 1;
                }
            }
            best = Math.Max(best, 1); // one character always makes progress, even if a tokenizer rates it over budget
            if (position + best < word.Length && char.IsHighSurrogate(word[position + best - 1]))
            {
                best = best > 1 ? best - 1 : 2;
            }
            yield return (position, word.Substring(position, best));
            position += best;
        }
    }
}
