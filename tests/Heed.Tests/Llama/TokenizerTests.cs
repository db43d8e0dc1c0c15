using Heed.Llama;
using Heed.TestModels;

namespace Heed.Tests.Llama;

[Collection(TinyModelCollection.Name)]
public sealed class TokenizerTests(TinyModelFixture fixture)
{
    private Tokenizer Tokenizer => fixture.Model.Tokenizer;

    [Theory]
    [InlineData("the pass key is 48213. remember it")]
    [InlineData("Attention finds the answer; retrieval ranks documents!")]
    [InlineData("naïve café — 東京 🙂 tabs\tand\nnewlines  double  spaces")]
    [InlineData(" leading space and trailing ")]
    // Detokenize follows llama.cpp's clean-up for the gpt-2 pre-tokenizer (" ." becomes "."),
    // so these texts have no space before punctuation; raw pieces are checked below.
    public void MatchesAnIndependentBpeAndRoundTrips(string text)
    {
        var reference = new ReferenceBpe([.. TinyLlama.Bpe.Tokens, "<|bos|>", "<|eos|>"], TinyLlama.Bpe.Merges);
        int[] tokens = Tokenizer.Tokenize(text, addSpecial: false);
        Assert.Equal(reference.Encode(text), tokens);
        Assert.Equal(text, Tokenizer.Detokenize(tokens));
    }

    [Fact]
    public void MergesMakeCommonWordsSingleTokens()
    {
        int[] tokens = Tokenizer.Tokenize("the pass key", addSpecial: false);
        Assert.True(tokens.Length < "the pass key".Length, $"expected merges, got {tokens.Length} tokens");
    }

    [Fact]
    public void AddsBosAsTheVocabularySays()
    {
        Assert.True(Tokenizer.AddsBeginningOfSequence);
        Assert.Equal(TinyLlama.Bos, Tokenizer.BeginningOfSequence);
        Assert.Equal(TinyLlama.Eos, Tokenizer.EndOfSequence);
        int[] tokens = Tokenizer.Tokenize("key");
        Assert.Equal(TinyLlama.Bos, tokens[0]);
        Assert.True(Tokenizer.IsEndOfGeneration(TinyLlama.Eos));
        Assert.False(Tokenizer.IsEndOfGeneration(tokens[1]));
    }

    [Fact]
    public void SpecialTokensParseOnlyWhenAsked()
    {
        Assert.Equal([TinyLlama.Eos], Tokenizer.Tokenize("<|eos|>", addSpecial: false, parseSpecial: true));
        Assert.True(Tokenizer.Tokenize("<|eos|>", addSpecial: false).Length > 1);
    }

    [Fact]
    public void PiecesConcatenateToTheText()
    {
        const string text = "café 🙂 key . end ?";
        int[] tokens = Tokenizer.Tokenize(text, addSpecial: false);
        byte[] bytes = tokens.SelectMany(t => Tokenizer.TokenToBytes(t)).ToArray();
        Assert.Equal(text, System.Text.Encoding.UTF8.GetString(bytes));
    }

    [Fact]
    public void EmptyTextAndBadIds()
    {
        Assert.Empty(Tokenizer.Tokenize("", addSpecial: false));
        Assert.Equal("", Tokenizer.Detokenize([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Detokenize([fixture.Model.VocabularySize]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.TokenToBytes(-1));
        Assert.Throws<ArgumentNullException>(() => Tokenizer.Tokenize(null!));
    }
}
