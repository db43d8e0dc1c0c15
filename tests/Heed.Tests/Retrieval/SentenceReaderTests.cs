using Heed.Retrieval;

namespace Heed.Tests.Retrieval;

public sealed class SentenceReaderTests
{
    [Fact]
    public void SplitsOnSentenceEndsAndBlankLinesWithExactOffsets()
    {
        const string text = "  First one. Second one!Not split here? Third\n\nFourth after a blank line.\nFifth. ";
        var reader = new SentenceReader(new StringReader(text));
        List<SentenceReader.Sentence> sentences = reader.ReadAll().ToList();
        Assert.Equal(["First one.", "Second one!Not split here?", "Third", "Fourth after a blank line.", "Fifth."],
            sentences.Select(s => s.Text));
        foreach (SentenceReader.Sentence s in sentences)
        {
            Assert.Equal(s.Text, text.Substring((int)s.Offset, s.Length));
        }
        Assert.Equal(text.Length, reader.CharactersRead);
    }

    [Fact]
    public void LongRunsAreCutAtASpaceBeforeTheLimit()
    {
        string text = string.Join(" ", Enumerable.Range(0, 200).Select(i => $"word{i}"));
        List<SentenceReader.Sentence> sentences = new SentenceReader(new StringReader(text), 100).ReadAll().ToList();
        Assert.True(sentences.Count > 5);
        Assert.All(sentences, s =>
        {
            Assert.InRange(s.Length, 1, 100);
            Assert.Equal(s.Text, text.Substring((int)s.Offset, s.Length));
            Assert.DoesNotContain("  ", s.Text);
        });
        Assert.Equal(text.Split(' '), sentences.SelectMany(s => s.Text.Split(' ')));
    }

    [Fact]
    public void EmptyAndWhitespaceGiveNothing()
    {
        Assert.Empty(new SentenceReader(new StringReader("")).ReadAll());
        Assert.Empty(new SentenceReader(new StringReader(" \n\n \t ")).ReadAll());
        Assert.Throws<ArgumentOutOfRangeException>(() => new SentenceReader(new StringReader("x"), 3));
    }
}
