using Heed.Attention;
using Heed.Llama;
using Heed.Ranking;
using System.Runtime.InteropServices;

namespace Heed.Tests.Ranking;

[Collection(TinyModelCollection.Name)]
public sealed class CachedDocumentRerankerTests(TinyModelFixture fixture)
{
    private static readonly string[] Documents =
    [
        "the quick brown fox jumps over the lazy dog .",
        "the pass key is 48213 . remember the pass key .",
        "attention finds the answer .",
        "retrieval ranks the documents by the mass the query gives them , one by one .",
    ];

    private const string Query = "what is the pass key ?";

    private static InContextRerankerOptions Ranking(bool numbered = false, int contextSize = 256) => new()
    {
        ContextSize = contextSize, NumberDocuments = numbered, StoreHalfPrecision = false,
        ContextOptions = new LlamaContextOptions
        {
            Threads = 2, FlashAttention = FlashAttentionMode.Disabled, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
        },
    };

    private CachedDocumentReranker CreateBlock(bool numbered = false, int contextSize = 256, int maxDocuments = 16) =>
        new(fixture.Model, new CachedDocumentRerankerOptions
        {
            Ranking = Ranking(numbered, contextSize), MaxCachedDocuments = maxDocuments, CacheTokens = 4 * contextSize,
        });

    private static double[] ScoresByIndex(IReadOnlyList<RankedDocument> ranked) =>
        ranked.OrderBy(r => r.Index).Select(r => r.Score).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WithOneDocumentBlockIcrEqualsFullIcr(bool numbered)
    {
        // One document attends to nothing but the instruction and itself in both: block attention
        // changes nothing, and the query reads the same rows over the same keys.
        using var full = new InContextReranker(fixture.Model, Ranking(numbered));
        using CachedDocumentReranker block = CreateBlock(numbered);
        foreach (string document in Documents)
        {
            double expected = (await full.RerankAsync(Query, [document]))[0].Score;
            double actual = (await block.RerankAsync(Query, [document]))[0].Score;
            Assert.NotEqual(0, expected);
            // The same arithmetic on differently batched decodes: equal to float32 rounding of the attention mass.
            Assert.Equal(expected, actual, Math.Abs(expected) * 1e-5);
            Assert.Equal(new CachedDocumentReranker.CacheUse(0, 0, 1), block.LastUse);
        }
    }

    [Fact]
    public async Task CachedDocumentsScoreAsFreshlyEncodedOnes()
    {
        using CachedDocumentReranker first = CreateBlock();
        double[] fresh = ScoresByIndex(await first.RerankAsync(Query, Documents));
        Assert.Equal(new CachedDocumentReranker.CacheUse(0, 0, Documents.Length), first.LastUse);

        double[] cached = ScoresByIndex(await first.RerankAsync(Query, Documents));
        Assert.Equal(new CachedDocumentReranker.CacheUse(Documents.Length, 0, 0), first.LastUse);
        Assert.Equal(fresh, cached);

        // Cached ahead of the query, in another reranker (another context): the same scores.
        using CachedDocumentReranker second = CreateBlock();
        await second.CacheDocumentsAsync(Documents);
        Assert.Equal(Documents.Length, second.CachedDocuments);
        double[] ahead = ScoresByIndex(await second.RerankAsync(Query, Documents));
        Assert.Equal(new CachedDocumentReranker.CacheUse(Documents.Length, 0, 0), second.LastUse);
        for (int i = 0; i < fresh.Length; i++)
        {
            Assert.Equal(fresh[i], ahead[i], Math.Abs(fresh[i]) * 1e-6);
        }
    }

    [Fact]
    public async Task AMovedDocumentsKeysEqualThoseOfTheFullPromptAtItsPlace()
    {
        // Layer 0's keys depend only on the token and its position (RoPE of a projection of its
        // embedding): a document moved by K-shift to its place must have the keys that a plain
        // decode of the whole prompt gives its tokens there.
        using CachedDocumentReranker block = CreateBlock();
        await block.RerankAsync(Query, [Documents[0], Documents[2]]);
        Assert.Equal(new CachedDocumentReranker.CacheUse(0, 0, 2), block.LastUse);
        AttentionCapture.KeyRows moved = block.CachedKeys(Documents[2])[0];

        Tokenizer tokenizer = fixture.Model.Tokenizer;
        int[] head = tokenizer.Tokenize("Here are some paragraphs:");
        int[] first = tokenizer.Tokenize($"\n\n[*] {Documents[0]}", addSpecial: false);
        int[] second = tokenizer.Tokenize($"\n\n[*] {Documents[2]}", addSpecial: false);
        using var capture = new AttentionCapture(fixture.Model, [0], new LlamaContextOptions
        {
            ContextSize = 256, Threads = 2, FlashAttention = FlashAttentionMode.Disabled, KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
        });
        capture.Evaluate([.. head, .. first, .. second], keepQueries: false, keepKeys: true);
        int start = head.Length + first.Length;
        AttentionCapture.KeyRows reference = capture.GetKeys(0, start, start + second.Length);

        Assert.Equal(reference.Positions, moved.Positions);
        float[] x = MemoryMarshal.Cast<byte, float>(moved.Data).ToArray();
        float[] y = MemoryMarshal.Cast<byte, float>(reference.Data).ToArray();
        float scale = y.Max(Math.Abs);
        Assert.True(scale > 0);
        // float32 RoPE at the first place then float32 rotation by the move, vs float32 RoPE at the
        // place: angles up to ~60 rad carry ~1e-5 rad of rounding, so keys agree to ~1e-5 of their
        // size; 1e-4 leaves room and is still 100 times below what a wrong rotation gives (below).
        Assert.All(x.Zip(y), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-4 * scale, $"{p.First} vs {p.Second}"));
        // Keys left at the first place (no move) are far off: the comparison can fail.
        AttentionCapture.KeyRows unmoved = capture.GetKeys(0, head.Length, head.Length + first.Length);
        float[] z = MemoryMarshal.Cast<byte, float>(unmoved.Data).ToArray();
        Assert.Contains(z.Zip(x), p => Math.Abs(p.First - p.Second) > 1e-2 * scale);
    }

    [Fact]
    public async Task DocumentsMovedTwiceScoreAsDocumentsMovedOnce()
    {
        string[] reordered = [Documents[3], Documents[1], Documents[0], Documents[2]];
        using CachedDocumentReranker moved = CreateBlock();
        await moved.RerankAsync(Query, Documents);
        double[] twice = ScoresByIndex(await moved.RerankAsync(Query, reordered));
        Assert.Equal(0, moved.LastUse.Encoded);
        Assert.True(moved.LastUse.Shifted >= 3);

        using CachedDocumentReranker encoded = CreateBlock();
        double[] once = ScoresByIndex(await encoded.RerankAsync(Query, reordered));
        Assert.Equal(new CachedDocumentReranker.CacheUse(0, 0, reordered.Length), encoded.LastUse);

        // Rotations compose (R(a) R(b) = R(a + b)): two moves equal one up to float32 rounding of the
        // rotated keys (~1e-6 of their size), which moves a score by about as much of its size.
        double size = once.Max(Math.Abs);
        for (int i = 0; i < once.Length; i++)
        {
            Assert.True(Math.Abs(twice[i] - once[i]) <= 1e-4 * size, $"document {i}: moved twice {twice[i]}, once {once[i]}");
        }
    }

    [Fact]
    public async Task SavedCacheLoadsAndReproducesScores()
    {
        string path = Path.Combine(fixture.Directory, $"block-{Guid.NewGuid():N}.heedblocks");
        double[] before;
        using (CachedDocumentReranker first = CreateBlock())
        {
            before = ScoresByIndex(await first.RerankAsync(Query, Documents));
            first.SaveCache(path);
        }
        using CachedDocumentReranker second = CreateBlock();
        second.LoadCache(path);
        Assert.Equal(Documents.Length, second.CachedDocuments);
        double[] after = ScoresByIndex(await second.RerankAsync(Query, Documents));
        Assert.Equal(new CachedDocumentReranker.CacheUse(Documents.Length, 0, 0), second.LastUse);
        for (int i = 0; i < before.Length; i++)
        {
            Assert.Equal(before[i], after[i], Math.Abs(before[i]) * 1e-6);
        }

        // A cache for other options (another window) or a damaged file is refused, and the reranker still works.
        using CachedDocumentReranker other = CreateBlock(contextSize: 128);
        Assert.Throws<InvalidDataException>(() => other.LoadCache(path));
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Throws<InvalidDataException>(() => second.LoadCache(path));
        Assert.Equal(0, second.CachedDocuments);
        Assert.Equal(Documents.Length, (await second.RerankAsync(Query, Documents)).Count);
        Assert.Throws<FileNotFoundException>(() => second.LoadCache(path + ".missing"));
    }

    [Fact]
    public async Task ManyDocumentsGoThroughWindowsAndEvictionLikeFullIcr()
    {
        // More documents than one window or the cache holds: windows are scored and merged as full
        // ICR does, and least recently used documents make room.
        string[] many = Enumerable.Range(0, 24).Select(i => $"{Documents[i % 4]} number {i} .").ToArray();
        using var block = new CachedDocumentReranker(fixture.Model, new CachedDocumentRerankerOptions
        {
            Ranking = Ranking(contextSize: 256), MaxCachedDocuments = 8, CacheTokens = 640,
        });
        IReadOnlyList<RankedDocument> ranked = await block.RerankAsync(Query, many);
        Assert.Equal(Enumerable.Range(0, many.Length), ranked.Select(r => r.Index).Order());
        Assert.True(block.CachedDocuments <= 8);
        Assert.All(ranked, r => Assert.True(double.IsFinite(r.Score)));
    }

    [Fact]
    public async Task BadInputGivesClearExceptions()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CachedDocumentReranker(fixture.Model,
            new CachedDocumentRerankerOptions { MaxCachedDocuments = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CachedDocumentReranker(fixture.Model,
            new CachedDocumentRerankerOptions { MaxCachedDocuments = 254 }));
        var small = Assert.Throws<ArgumentOutOfRangeException>(() => new CachedDocumentReranker(fixture.Model,
            new CachedDocumentRerankerOptions { Ranking = Ranking(contextSize: 256), CacheTokens = 100 }));
        Assert.Contains("one window", small.Message);

        using CachedDocumentReranker block = CreateBlock(contextSize: 128, maxDocuments: 2);
        await Assert.ThrowsAsync<ArgumentException>(() => block.RerankAsync("", Documents));
        await Assert.ThrowsAsync<ArgumentException>(() => block.RerankAsync("key", []));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => block.RerankAsync("key", ["fine", "   "]));
        Assert.Contains("Document 1", e.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => block.RerankAsync("key", Documents, topK: 0));
        string longDocument = string.Join(" ", Enumerable.Repeat("the lazy dog", 60));
        e = await Assert.ThrowsAsync<ArgumentException>(() => block.RerankAsync("key", [longDocument]));
        Assert.Contains("Split it", e.Message);
        string longQuery = string.Join(" ", Enumerable.Repeat("what is the pass key", 40));
        e = await Assert.ThrowsAsync<ArgumentException>(() => block.RerankAsync(longQuery, Documents));
        Assert.Contains("context of", e.Message);
        // Three short documents share a 128-token window, more than the two sequences kept for documents.
        e = await Assert.ThrowsAsync<ArgumentException>(() => block.RerankAsync("key", ["a b", "c d", "e f"]));
        Assert.Contains("MaxCachedDocuments", e.Message);
        Assert.Throws<InvalidOperationException>(() => block.SaveCache(Path.Combine(fixture.Directory, "empty.heedblocks")));
        // After all that, it still ranks.
        Assert.Single(await block.RerankAsync("key", [Documents[2]]));
    }
}
