using Heed.Text;


namespace Heed.Tests.Rag;

public class TextChunkerTests
{
    // ten sentences of exactly five words each: S0 = "Sentence zero has five words."
    private static readonly string[] Names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    private static readonly string TenSentences = string.Join(" ", Names.Select(n => $"Sentence {n} has five words."));

    private static string S(params int[] indexes) => string.Join(" ", indexes.Select(i => $"Sentence {Names[i]} has five words."));

    [Fact]
    public void Packs_whole_sentences_up_to_the_budget_with_one_sentence_of_overlap()
    {
        var chunker = new TextChunker(TestCounters.Words, new ChunkingOptions { MaxTokens = 20, OverlapSentences = 1 });
        TextChunk[] chunks = chunker.Chunk(TenSentences, "/docs/a.txt").ToArray();
        // 4 sentences (20 words) fill a chunk; each next chunk starts with the previous chunk's last sentence
        Assert.Equal([S(0, 1, 2, 3), S(3, 4, 5, 6), S(6, 7, 8, 9)], chunks.Select(c => c.Text));
        Assert.Equal([0, 1, 2], chunks.Select(c => c.Ordinal));
        Assert.All(chunks, c => Assert.Equal("/docs/a.txt", c.SourcePath));
    }

    [Fact]
    public void Without_overlap_chunks_tile_the_text()
    {
        var chunker = new TextChunker(TestCounters.Words, new ChunkingOptions { MaxTokens = 20, OverlapSentences = 0 });
        TextChunk[] chunks = chunker.Chunk(TenSentences, "a").ToArray();
        Assert.Equal([S(0, 1, 2, 3), S(4, 5, 6, 7), S(8, 9)], chunks.Select(c => c.Text));
    }

    [Fact]
    public void Offsets_give_back_the_exact_text_and_every_chunk_fits_the_budget()
    {
        string text = SentenceSplitterTests.SampleText(seed: 5, sentences: 400);
        var chunker = new TextChunker(TestCounters.Words, new ChunkingOptions { MaxTokens = 24, OverlapSentences = 2 });
        TextChunk[] chunks = chunker.Chunk(text, "x").ToArray();
        Assert.True(chunks.Length > 20);
        Assert.All(chunks, c => Assert.Equal(text.Substring((int)c.StartOffset, (int)(c.EndOffset - c.StartOffset)), c.Text));
        Assert.All(chunks, c => Assert.InRange(TestCounters.Words(c.Text), 1, 24));
        Assert.Equal(Enumerable.Range(0, chunks.Length), chunks.Select(c => c.Ordinal));
        // every sentence is inside some chunk, and chunks move forward
        foreach (SentenceSpan s in SentenceSplitter.Split(text))
        {
            Assert.Contains(chunks, c => c.StartOffset <= s.Start && s.End <= c.EndOffset);
        }
        for (int i = 1; i < chunks.Length; i++)
        {
            Assert.True(chunks[i].EndOffset > chunks[i - 1].EndOffset);
            Assert.True(chunks[i].StartOffset >= chunks[i - 1].StartOffset);
        }
    }

    [Fact]
    public void A_sentence_over_the_budget_is_split_at_words()
    {
        string[] words = Enumerable.Range(0, 50).Select(i => $"W{i}").ToArray();
        string text = "Short one. " + string.Join(" ", words) + ". Short two.";
        var chunker = new TextChunker(TestCounters.Words, new ChunkingOptions { MaxTokens = 8, OverlapSentences = 0 });
        TextChunk[] chunks = chunker.Chunk(text, "x").ToArray();
        Assert.Equal("Short one.", chunks[0].Text);
        Assert.Equal("Short two.", chunks[^1].Text);
        TextChunk[] pieces = chunks[1..^1];
        Assert.All(pieces, p => Assert.InRange(TestCounters.Words(p.Text), 1, 8));
        Assert.Equal(7, pieces.Length); // 50 words in pieces of at most 8
        Assert.Equal(string.Join(" ", words) + ".", string.Join(" ", pieces.Select(p => p.Text)));
        Assert.All(pieces, p => Assert.Equal(text.Substring((int)p.StartOffset, p.Text.Length), p.Text));
    }

    [Fact]
    public void A_single_word_over_the_budget_is_cut_without_breaking_surrogate_pairs()
    {
        string emoji = string.Concat(Enumerable.Repeat("😀", 40)); // 80 UTF-16 code units
        var chunker = new TextChunker(s => s.Length, new ChunkingOptions { MaxTokens = 9, OverlapSentences = 0 });
        TextChunk[] chunks = chunker.Chunk(emoji, "x").ToArray();
        Assert.All(chunks, c => Assert.InRange(c.Text.Length, 2, 9));
        Assert.All(chunks, c => Assert.False(char.IsLowSurrogate(c.Text[0]) || char.IsHighSurrogate(c.Text[^1])));
        Assert.Equal(emoji, string.Concat(chunks.Select(c => c.Text)));
    }

    [Fact]
    public void Reading_from_a_stream_gives_the_same_chunks_as_from_a_string()
    {
        string text = SentenceSplitterTests.SampleText(seed: 9, sentences: 300);
        var chunker = new TextChunker(ApproximateTokenCounter.Count, new ChunkingOptions { MaxTokens = 32 });
        TextChunk[] fromString = chunker.Chunk(text, "x").ToArray();
        TextChunk[] fromStream = chunker.ChunkSentences(new SentenceReader(new StringReader(text), blockChars: 5).Read(), "x", default).ToArray();
        Assert.Equal(fromString, fromStream);
    }

    [Fact]
    public void Cancellation_stops_between_sentences()
    {
        using var cts = new CancellationTokenSource();
        int calls = 0;
        var chunker = new TextChunker(s => { if (++calls == 5) { cts.Cancel(); } return TestCounters.Words(s); },
            new ChunkingOptions { MaxTokens = 20 });
        Assert.Throws<OperationCanceledException>(() => chunker.Chunk(TenSentences, "x", cts.Token).ToArray());
        Assert.InRange(calls, 5, 6);
    }

    [Fact]
    public void Bad_options_and_arguments_are_refused_with_a_reason()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TextChunker(TestCounters.Words, new ChunkingOptions { MaxTokens = 2 }));
        Assert.Contains("at least 8", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TextChunker(TestCounters.Words, new ChunkingOptions { OverlapSentences = -1 }));
        Assert.Throws<ArgumentNullException>(() => new TextChunker(null!));
        var chunker = new TextChunker(_ => -1);
        var bad = Assert.Throws<InvalidOperationException>(() => chunker.Chunk("Hello there.", "x").ToArray());
        Assert.Contains("returned -1", bad.Message);
    }
}

[Collection(TinyModelCollection.Name)]
public class TextChunkerModelTokenizerTests(TinyModelFixture fixture)
{
    [Fact]
    public void Chunks_fit_the_budget_counted_by_the_model_tokenizer()
    {
        string text = SentenceSplitterTests.SampleText(seed: 3, sentences: 200);
        var chunker = new TextChunker(fixture.Model.Tokenizer.CountTokens, new ChunkingOptions { MaxTokens = 24, OverlapSentences = 1 });
        TextChunk[] chunks = chunker.Chunk(text, "x").ToArray();
        Assert.True(chunks.Length > 10);
        Assert.All(chunks, c => Assert.InRange(fixture.Model.Tokenizer.CountTokens(c.Text), 1, 24));
        Assert.All(chunks, c => Assert.Equal(text.Substring((int)c.StartOffset, c.Text.Length), c.Text));
    }
}
