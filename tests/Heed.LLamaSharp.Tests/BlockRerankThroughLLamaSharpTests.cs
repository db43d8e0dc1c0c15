using Heed.Llama;
using Heed.Ranking;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// Block ICR (several sequences in one unified cache, sequence copy, K-shift, sequence state save
/// and load) on LLamaSharp's contexts against the same on Heed's engine.
/// </summary>
public sealed class BlockRerankThroughLLamaSharpTests(BothEnginesFixture engines) : IClassFixture<BothEnginesFixture>
{
    private static readonly string[] Documents =
    [
        "Apache httpd reads its main configuration from httpd.conf when the server starts.",
        "The staging server's pass key is 48213. Keep it out of the public repository.",
        "The garbage collector of Go runs concurrently with the program.",
    ];

    private static CachedDocumentRerankerOptions Options => new()
    {
        Ranking = new InContextRerankerOptions
        {
            ContextSize = 512, NumberDocuments = false, StoreHalfPrecision = false,
            ContextOptions = new LlamaContextOptions { Threads = 2, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32 },
        },
        MaxCachedDocuments = 8,
    };

    [Fact]
    public async Task ScoresMovesAndSavedCachesMatchHeedsEngine()
    {
        const string query = "What is the pass key of the staging server?";
        using var heed = new CachedDocumentReranker(engines.Heed, Options);
        using var sharp = new CachedDocumentReranker(engines.LLamaSharp, Options);
        string[] reordered = [Documents[2], Documents[0], Documents[1]];
        foreach (string[] documents in new[] { Documents, reordered })
        {
            IReadOnlyList<RankedDocument> expected = await heed.RerankAsync(query, documents);
            IReadOnlyList<RankedDocument> actual = await sharp.RerankAsync(query, documents);
            Assert.Equal(heed.LastUse, sharp.LastUse);
            Assert.Equal(expected.Select(r => r.Index), actual.Select(r => r.Index));
            // Two llama.cpp builds (Heed's pin and LLamaSharp's commit): equal to 1e-3 of the largest score.
            double scale = expected.Max(r => Math.Abs(r.Score));
            Assert.All(expected.Zip(actual), p => Assert.True(Math.Abs(p.First.Score - p.Second.Score) <= 1e-3 * scale));
        }
        Assert.True(sharp.LastUse.Shifted > 0);

        string path = Path.Combine(Path.GetTempPath(), $"heed-block-{Guid.NewGuid():N}.cache");
        try
        {
            double[] before = (await sharp.RerankAsync(query, Documents)).OrderBy(r => r.Index).Select(r => r.Score).ToArray();
            sharp.SaveCache(path);
            using var loaded = new CachedDocumentReranker(engines.LLamaSharp, Options);
            loaded.LoadCache(path);
            double[] after = (await loaded.RerankAsync(query, Documents)).OrderBy(r => r.Index).Select(r => r.Score).ToArray();
            Assert.Equal(new CachedDocumentReranker.CacheUse(Documents.Length, 0, 0), loaded.LastUse);
            Assert.All(before.Zip(after), p => Assert.Equal(p.First, p.Second, Math.Abs(p.First) * 1e-6));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
