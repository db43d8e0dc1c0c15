using System.Text;

namespace Heed.TestModels;

/// <summary>
/// A small byte-level BPE vocabulary in GPT-2's conventions (every byte is a token, shown
/// through GPT-2's byte-to-unicode map; merges learned from a corpus by pair frequency), which
/// llama.cpp loads as tokenizer model "gpt2" and can tokenize any text with.
/// </summary>
public sealed class ByteLevelBpe
{
    public List<string> Tokens { get; } = [];
    public List<string> Merges { get; } = [];

    public static string[] ByteToUnicode { get; } = BuildByteMap();

    /// <summary>Learns up to <paramref name="mergeCount"/> merges from the words of a corpus.</summary>
    public static ByteLevelBpe Train(string corpus, int mergeCount)
    {
        var bpe = new ByteLevelBpe();
        bpe.Tokens.AddRange(ByteToUnicode);
        var known = new HashSet<string>(bpe.Tokens);
        // Words as GPT-2 pre-tokenizes them roughly: a leading space belongs to the word.
        List<List<string>> words = corpus.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => Encoding.UTF8.GetBytes(" " + w).Select(b => ByteToUnicode[b]).ToList())
            .ToList();
        for (int m = 0; m < mergeCount; m++)
        {
            var counts = new Dictionary<(string, string), int>();
            foreach (List<string> word in words)
            {
                for (int i = 0; i + 1 < word.Count; i++)
                {
                    counts[(word[i], word[i + 1])] = counts.GetValueOrDefault((word[i], word[i + 1])) + 1;
                }
            }
            if (counts.Count == 0)
            {
                break;
            }
            ((string a, string b), int count) = counts
                .OrderByDescending(kv => kv.Value)
                .ThenBy(kv => kv.Key.Item1 + " " + kv.Key.Item2, StringComparer.Ordinal)
                .First();
            if (count < 2)
            {
                break;
            }
            string merged = a + b;
            bpe.Merges.Add(a + " " + b);
            if (known.Add(merged))
            {
                bpe.Tokens.Add(merged);
            }
            foreach (List<string> word in words)
            {
                for (int i = 0; i + 1 < word.Count; i++)
                {
                    if (word[i] == a && word[i + 1] == b)
                    {
                        word[i] = merged;
                        word.RemoveAt(i + 1);
                    }
                }
            }
        }
        return bpe;
    }

    private static string[] BuildByteMap()
    {
        var map = new string[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            map[b] = ((char)(printable ? b : next++)).ToString();
        }
        return map;
    }
}
