using System.Text;
using System.Text.RegularExpressions;
using Heed.TestModels;

namespace Heed.Tests.Llama;

/// <summary>
/// An independent byte-level BPE tokenizer (GPT-2 pre-tokenization, merges by rank), used as
/// the reference that llama.cpp's tokenization of the tiny model must match.
/// </summary>
public sealed partial class ReferenceBpe(IReadOnlyList<string> tokens, IReadOnlyList<string> merges)
{
    private readonly Dictionary<string, int> _ids = tokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);
    private readonly Dictionary<(string, string), int> _ranks = merges
        .Select((m, i) => (Pair: m.Split(' '), Rank: i))
        .ToDictionary(x => (x.Pair[0], x.Pair[1]), x => x.Rank);

    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex PreTokenizer();

    public List<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (Match word in PreTokenizer().Matches(text))
        {
            List<string> symbols = Encoding.UTF8.GetBytes(word.Value).Select(b => ByteLevelBpe.ByteToUnicode[b]).ToList();
            while (symbols.Count > 1)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank)
                    {
                        (best, bestRank) = (i, rank);
                    }
                }
                if (best < 0)
                {
                    break;
                }
                symbols[best] += symbols[best + 1];
                symbols.RemoveAt(best + 1);
            }
            ids.AddRange(symbols.Select(s => _ids[s]));
        }
        return ids;
    }
}
