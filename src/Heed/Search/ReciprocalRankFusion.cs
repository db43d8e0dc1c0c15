namespace Heed.Search;

/// <summary>
/// Reciprocal-rank fusion (Cormack et al. 2009): an item's fused score is Σ over the rankings that contain it of
/// 1 / (k + rank), rank counted from 1. It needs no score calibration between rankers, which is why it joins
/// BM25 scores and cosine similarities.
/// </summary>
public static class ReciprocalRankFusion
{
    /// <summary>The k of the original paper, 60.</summary>
    public const int DefaultK = 60;

    /// <summary>Fuses rankings of item ids (best first); the result is best first, ties broken by the smaller id.</summary>
    /// <param name="rankings">Each a list of distinct ids, best first; an id may be missing from some.</param>
    /// <param name="k">The damping constant (1 or more).</param>
    public static IReadOnlyList<FusedItem> Fuse(IReadOnlyList<IReadOnlyList<int>> rankings, int k = DefaultK)
    {
        ArgumentNullException.ThrowIfNull(rankings);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        var scores = new Dictionary<int, double>();
        foreach (IReadOnlyList<int> ranking in rankings)
        {
            ArgumentNullException.ThrowIfNull(ranking, nameof(rankings));
            var seen = new HashSet<int>();
            for (int r = 0; r < ranking.Count; r++)
            {
                if (!seen.Add(ranking[r]))
                {
                    throw new ArgumentException($"Item {ranking[r]} appears twice in one ranking; each ranking lists an item once.", nameof(rankings));
                }
                scores[ranking[r]] = scores.GetValueOrDefault(ranking[r]) + 1.0 / (k + r + 1);
            }
        }
        return scores.OrderByDescending(s => s.Value).ThenBy(s => s.Key).Select(s => new FusedItem(s.Key, s.Value)).ToList();
    }
}

/// <summary>An item after reciprocal-rank fusion.</summary>
/// <param name="Id">The item's id as given in the rankings.</param>
/// <param name="Score">Σ 1 / (k + rank) over the rankings that contain it.</param>
public readonly record struct FusedItem(int Id, double Score);
