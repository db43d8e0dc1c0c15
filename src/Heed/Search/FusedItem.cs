namespace Heed.Search;

/// <summary>An item after reciprocal-rank fusion.</summary>
/// <param name="Id">The item's id as given in the rankings.</param>
/// <param name="Score">Σ 1 / (k + rank) over the rankings that contain it.</param>
public readonly record struct FusedItem(int Id, double Score);
