using Heed.Text;


namespace Heed.Tests.Rag;

public class SentenceSplitterTests
{
    private static string[] Sentences(string text) =>
        SentenceSplitter.Split(text).Select(s => text.Substring(s.Start, s.Length)).ToArray();

    [Fact]
    public void Abbreviations_and_decimals_do_not_end_sentences()
    {
        string text = "Dr. Smith paid $3.14 for it, e.g. a coffee. Then he left! Did he? Yes.";
        Assert.Equal(["Dr. Smith paid $3.14 for it, e.g. a coffee.", "Then he left!", "Did he?", "Yes."], Sentences(text));
    }

    [Fact]
    public void Initials_dotted_letters_and_lowercase_continuations_stay_in_one_sentence()
    {
        string text = "J. R. R. Tolkien lived in the U.S. Army barracks. It was approx. five miles away. Fine.";
        Assert.Equal(["J. R. R. Tolkien lived in the U.S. Army barracks.", "It was approx. five miles away.", "Fine."], Sentences(text));
    }

    [Fact]
    public void Line_breaks_and_paragraphs_end_sentences()
    {
        string text = "# Title\nfirst line without stop\n\n  Second paragraph here.\r\nLast";
        Assert.Equal(["# Title", "first line without stop", "Second paragraph here.", "Last"], Sentences(text));
    }

    [Fact]
    public void Closing_quotes_and_ellipses_belong_to_the_sentence()
    {
        string text = "He said \"Stop.\" Then he went... Where? (Nobody knew.) The end";
        Assert.Equal(["He said \"Stop.\"", "Then he went...", "Where?", "(Nobody knew.)", "The end"], Sentences(text));
    }

    [Fact]
    public void Urls_and_version_numbers_are_not_cut()
    {
        Assert.Equal(["See example.com/a.b for v1.2.3 notes.", "Done."], Sentences("See example.com/a.b for v1.2.3 notes. Done."));
    }

    [Fact]
    public void Empty_and_whitespace_text_has_no_sentences()
    {
        Assert.Empty(SentenceSplitter.Split(""));
        Assert.Empty(SentenceSplitter.Split("  \n\n\t "));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(64)]
    public void Streaming_in_small_blocks_gives_the_same_sentences_and_exact_gaps(int blockChars)
    {
        string text = SampleText(seed: 11, sentences: 120);
        SentenceSpan[] whole = SentenceSplitter.Split(text).ToArray();
        StreamedSentence[] streamed = new SentenceReader(new StringReader(text), blockChars).Read().ToArray();
        Assert.Equal(whole.Select(s => ((long)s.Start, text.Substring(s.Start, s.Length))), streamed.Select(s => (s.Start, s.Text)));
        Assert.Equal("", streamed[0].Gap);
        for (int i = 1; i < streamed.Length; i++)
        {
            long gapStart = streamed[i - 1].End;
            Assert.Equal(text[(int)gapStart..(int)streamed[i].Start], streamed[i].Gap);
        }
    }

    [Fact]
    public void A_run_without_any_boundary_is_cut_at_whitespace_to_bound_memory()
    {
        string word = "lorem ";
        string text = string.Concat(Enumerable.Repeat(word, SentenceReader.MaxHeldChars / word.Length * 3));
        StreamedSentence[] streamed = new SentenceReader(new StringReader(text)).Read().ToArray();
        Assert.True(streamed.Length >= 3);
        Assert.All(streamed, s => Assert.True(s.Text.Length <= SentenceReader.MaxHeldChars + (1 << 16)));
        Assert.All(streamed, s => Assert.Equal(text.Substring((int)s.Start, s.Text.Length), s.Text));
        Assert.Equal(text.TrimEnd().Length, (int)streamed[^1].End);
    }

    internal static string SampleText(int seed, int sentences)
    {
        var random = new Random(seed);
        string[] words = ["alpha", "beta", "Dr.", "e.g.", "3.14", "U.S.", "gamma", "delta", "(note)", "\"quote\"", "epsilon"];
        string[] ends = [".", "!", "?", "...", ".\"", "\n", "\n\n", ". ", "?)"];
        var sb = new System.Text.StringBuilder();
        for (int s = 0; s < sentences; s++)
        {
            int n = random.Next(1, 12);
            for (int w = 0; w < n; w++)
            {
                sb.Append(w == 0 ? char.ToUpperInvariant(words[random.Next(words.Length)][0]) + words[random.Next(words.Length)][1..] : words[random.Next(words.Length)]);
                sb.Append(random.Next(5) == 0 ? "  " : " ");
            }
            sb.Length--;
            sb.Append(ends[random.Next(ends.Length)]).Append(random.Next(3) == 0 ? "   " : " ");
        }
        return sb.ToString();
    }
}
