using Heed.Search;


namespace Heed.Tests.Rag;

/// <summary>BM25 against scores worked out by hand (k1 = 1.2, b = 0.75, IDF = ln(1 + (N − n + 0.5)/(n + 0.5))).</summary>
public class Bm25IndexTests
{
    // D0 "the cat sat on the mat" 6 terms, D1 "the dog sat" 3 terms, D2 "cats and dogs" 3 terms: N = 3, avgdl = 12/3 = 4
    private static readonly string[] Corpus = ["The cat sat on the mat.", "The dog sat!", "Cats and dogs."];

    [Fact]
    public void Scores_match_the_formula_worked_by_hand()
    {
        var index = new Bm25Index(Corpus);
        Assert.Equal(3, index.DocumentCount);
        Assert.Equal(4.0, index.AverageDocumentLength, 12);

        // "cat": n = 1 → IDF = ln(1 + 2.5/1.5) = ln(8/3); "sat": n = 2 → IDF = ln(1 + 1.5/2.5) = ln(1.6)
        // D0: |D| = 6 → K = 1.2·(0.25 + 0.75·6/4) = 1.65, tf = 1 → 2.2/2.65 per term
        double d0 = (Math.Log(8.0 / 3.0) + Math.Log(1.6)) * 2.2 / 2.65;
        // D1: |D| = 3 → K = 1.2·(0.25 + 0.75·3/4) = 0.975, only "sat"
        double d1 = Math.Log(1.6) * 2.2 / 1.975;
        Assert.Equal(d0, index.Score("cat sat", 0), 12);
        Assert.Equal(d1, index.Score("cat sat", 1), 12);
        Assert.Equal(0.0, index.Score("cat sat", 2), 12); // "cats" is not "cat": no stemming

        IReadOnlyList<Bm25Hit> hits = index.Search("cat sat", 10);
        Assert.Equal([0, 1], hits.Select(h => h.Document));
        Assert.Equal(d0, hits[0].Score, 12);
        Assert.Equal(d1, hits[1].Score, 12);
    }

    [Fact]
    public void Term_frequency_saturates_as_the_formula_says()
    {
        var index = new Bm25Index(Corpus);
        // "the": n = 2 → IDF = ln(1.6); D0 tf = 2 → 2·2.2/(2 + 1.65); D1 tf = 1 → 2.2/(1 + 0.975)
        Assert.Equal(Math.Log(1.6) * 4.4 / 3.65, index.Score("THE", 0), 12);
        Assert.Equal(Math.Log(1.6) * 2.2 / 1.975, index.Score("the", 1), 12);
        // a repeated query term counts once
        Assert.Equal(index.Score("the", 0), index.Score("the the the", 0), 12);
    }

    [Fact]
    public void Stop_words_are_dropped_from_documents_and_lengths()
    {
        var index = new Bm25Index(Corpus, new Bm25Tokenizer(["the", "on", "and"]));
        // lengths now 3 (cat sat mat), 2 (dog sat), 2 (cats dogs): avgdl = 7/3
        Assert.Equal(7.0 / 3.0, index.AverageDocumentLength, 12);
        double k = 1.2 * (1 - 0.75 + 0.75 * 3 / (7.0 / 3.0));
        Assert.Equal(Math.Log(8.0 / 3.0) * 2.2 / (1 + k), index.Score("the cat", 0), 12);
        Assert.Empty(index.Search("the and on", 5));
    }

    [Fact]
    public void Search_orders_by_score_then_document_and_honours_topK()
    {
        var index = new Bm25Index(["apple pie", "apple", "banana", "apple apple apple tart tart tart"]);
        IReadOnlyList<Bm25Hit> all = index.Search("apple", 10);
        Assert.Equal(3, all.Count);
        Assert.True(all.Zip(all.Skip(1)).All(p => p.First.Score >= p.Second.Score));
        Assert.Single(index.Search("apple", 1));
        Assert.Empty(index.Search("kiwi", 3));
    }

    [Fact]
    public void An_empty_corpus_finds_nothing_and_bad_parameters_are_refused()
    {
        Assert.Empty(new Bm25Index([]).Search("anything", 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Bm25Index(Corpus, k1: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Bm25Index(Corpus, b: 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Bm25Index(Corpus).Search("cat", 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Bm25Index(Corpus).Score("cat", 3));
    }
}

public class Bm25TokenizerTests
{
    [Fact]
    public void Lowercases_and_splits_on_everything_but_letters_and_digits()
    {
        var tokenizer = new Bm25Tokenizer();
        Assert.Equal(["can", "t", "stop", "3", "14", "café", "naïve", "über", "42x", "日本語"],
            tokenizer.Tokenize("Can't STOP: 3.14 Café, naïve—Über 42x 日本語!"));
    }

    [Fact]
    public void Combining_marks_and_letters_outside_the_basic_plane_stay_in_the_term()
    {
        var tokenizer = new Bm25Tokenizer();
        Assert.Equal(["nai\u0308ve", "𝒳yz"], tokenizer.Tokenize("nai\u0308ve 𝒳yz"));
    }

    [Fact]
    public void Stop_words_are_matched_after_lowercasing()
    {
        var tokenizer = new Bm25Tokenizer(["The", "of"]);
        Assert.Equal(["end", "story"], tokenizer.Tokenize("THE end OF the story"));
        Assert.Contains("the", Bm25Tokenizer.EnglishStopWords);
    }
}
