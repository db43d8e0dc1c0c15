using System.Text.RegularExpressions;

namespace Heed.Rag;

/// <summary>
/// Finds the source numbers an answer cites: "[1]", "[1, 3]", "[2; 4]" and ranges "[1-3]" / "[1–3]". Numbers outside
/// 1..sourceCount are ignored (a model may invent them).
/// </summary>
public static partial class CitationParser
{
    /// <summary>The distinct cited numbers in 1..<paramref name="sourceCount"/>, in order of first appearance.</summary>
    public static IReadOnlyList<int> CitedNumbers(string answer, int sourceCount)
    {
        ArgumentNullException.ThrowIfNull(answer);
        ArgumentOutOfRangeException.ThrowIfNegative(sourceCount);
        var numbers = new List<int>();
        foreach (Match match in Bracket().Matches(answer))
        {
            foreach (string part in match.Groups[1].Value.Split([',', ';'], StringSplitOptions.TrimEntries))
            {
                string[] ends = part.Split(['-', '–'], StringSplitOptions.TrimEntries);
                if (!int.TryParse(ends[0], out int first))
                {
                    continue;
                }
                int last = ends.Length == 2 && int.TryParse(ends[1], out int l) && l >= first && l - first < 100 ? l : first;
                for (int n = first; n <= last; n++)
                {
                    if (n >= 1 && n <= sourceCount && !numbers.Contains(n))
                    {
                        numbers.Add(n);
                    }
                }
            }
        }
        return numbers;
    }

    [GeneratedRegex(@"\[\s*(\d{1,4}(?:\s*[-–]\s*\d{1,4})?(?:\s*[,;]\s*\d{1,4}(?:\s*[-–]\s*\d{1,4})?)*)\s*\]")]
    private static partial Regex Bracket();
}
