using Heed.Rag;
using Heed.Search;

namespace Heed.Tests.Rag;

public class ReciprocalRankFusionTests
{
    [Fact]
    public void Fuses_two_rankings_with_k_60_as_worked_by_hand()
    {
        // BM25 ranks A(1) B(2) C(3); dense ranks C(1) A(2) D(3)
        const int A = 10, B = 20, C = 30, D = 40;
        IReadOnlyList<FusedItem> fused = ReciprocalRankFusion.Fuse([[A, B, C], [C, A, D]]);
        double a = 1.0 / 61 + 1.0 / 62, c = 1.0 / 63 + 1.0 / 61, b = 1.0 / 62, d = 1.0 / 63;
        Assert.Equal([A, C, B, D], fused.Select(f => f.Id));
        Assert.Equal([a, c, b, d], fused.Select(f => f.Score));
    }

    [Fact]
    public void Ties_go_to_the_smaller_id_and_k_changes_the_scores()
    {
        IReadOnlyList<FusedItem> fused = ReciprocalRankFusion.Fuse([[2, 1], [1, 2]], k: 1);
        Assert.Equal([1, 2], fused.Select(f => f.Id));
        Assert.Equal(1.0 / 2 + 1.0 / 3, fused[0].Score, 15);
    }

    [Fact]
    public void Duplicates_within_a_ranking_and_bad_k_are_refused()
    {
        Assert.Throws<ArgumentException>(() => ReciprocalRankFusion.Fuse([[1, 1]]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReciprocalRankFusion.Fuse([[1]], k: 0));
        Assert.Empty(ReciprocalRankFusion.Fuse([]));
    }
}

public class CitationParserTests
{
    [Fact]
    public void Finds_single_lists_and_ranges_in_order_of_first_use()
    {
        Assert.Equal([2, 1, 3, 4], CitationParser.CitedNumbers("Yes [2]. Also [1, 3] and [2][4].", 5));
        Assert.Equal([1, 2, 3], CitationParser.CitedNumbers("See [1-3].", 5));
        Assert.Equal([4, 5], CitationParser.CitedNumbers("See [4–5; 5].", 5));
    }

    [Fact]
    public void Ignores_numbers_that_name_no_source_and_non_citations()
    {
        Assert.Equal([1], CitationParser.CitedNumbers("True [1] but not [0] nor [7] nor [x] nor array[i].", 3));
        Assert.Empty(CitationParser.CitedNumbers("No citations here.", 3));
    }
}
