using System.Text;

namespace Heed.Text;

/// <summary>
/// Cuts text into chunks of whole sentences that fit a token budget, with an overlap of whole sentences
/// (see <see cref="ChunkingOptions"/>). Every chunk's text is counted with the given token counter and is at most
/// <see cref="ChunkingOptions.MaxTokens"/> tokens; a sentence longer than that is split at word boundaries.
/// Text is streamed: a reader of any length is chunked in bounded memory.
/// </summary>
public sealed class TextChunker
{
    private readonly Func<string, int> _countTokens;

    /// <summary>Creates a chunker.</summary>
    /// <param name="countTokens">Counts the tokens of a text, e.g. <c>model.Tokenizer.CountTokens</c> or <see cref="ApproximateTokenCounter.Count"/>.</param>
    /// <param name="options">Budget and overlap; null uses the defaults.</param>
    public TextChunker(Func<string, int> countTokens, ChunkingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(countTokens);
        options ??= new ChunkingOptions();
        options.Validate();
        _countTokens = countTokens;
        Options = options;
    }

    /// <summary>The budget and overlap in use.</summary>
    public ChunkingOptions Options { get; }

    /// <summary>The chunks of a text, in order; offsets index into <paramref name="text"/>.</summary>
    /// <param name="text">The document's text.</param>
    /// <param name="sourcePath">Recorded in every chunk.</param>
    /// <param name="cancellationToken">Checked between sentences.</param>
    public IEnumerable<TextChunk> Chunk(string text, string sourcePath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Chunk(new StringReader(text), sourcePath, cancellationToken);
    }

    /// <summary>The chunks of a streamed text, in order, read lazily as the result is enumerated.</summary>
    /// <param name="reader">The document's text; read to its end.</param>
    /// <param name="sourcePath">Recorded in every chunk.</param>
    /// <param name="cancellationToken">Checked between sentences.</param>
    public IEnumerable<TextChunk> Chunk(TextReader reader, string sourcePath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(sourcePath);
        return ChunkSentences(new SentenceReader(reader).Read(cancellationToken), sourcePath, cancellationToken);
    }

    internal IEnumerable<TextChunk> ChunkSentences(IEnumerable<StreamedSentence> sentences, string sourcePath, CancellationToken cancellationToken)
    {
        var packer = new Packer(this, sourcePath);
        var ready = new List<TextChunk>();
        foreach (StreamedSentence sentence in sentences)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int tokens = Count(sentence.Text);
            if (tokens <= Options.MaxTokens)
            {
                packer.Add(new Piece(sentence.Start, sentence.Text, sentence.Gap, tokens), ready);
            }
            else
            {
                packer.Flush(ready);
                foreach ((long start, string text) in LongSentenceSplitter.Split(sentence, Options.MaxTokens, _countTokens))
                {
                    packer.EmitAlone(start, text, ready);
                }
            }
            foreach (TextChunk chunk in ready)
            {
                yield return chunk;
            }
            ready.Clear();
        }
        packer.Flush(ready);
        foreach (TextChunk chunk in ready)
        {
            yield return chunk;
        }
    }

    private int Count(string text)
    {
        int n = _countTokens(text);
        return n >= 0 ? n : throw new InvalidOperationException($"The token counter returned {n} for a text of {text.Length} characters; it must return a count of 0 or more.");
    }

    /// <summary>A sentence (or a piece of one) waiting in the current chunk.</summary>
    private readonly record struct Piece(long Start, string Text, string? Gap, int Tokens);

    /// <summary>The sentences of the chunk being built; the first <c>_overlap</c> of them were already emitted.</summary>
    private sealed class Packer(TextChunker chunker, string sourcePath)
    {
        private readonly List<Piece> _window = [];
        private int _overlap;
        private int _ordinal;

        private int Budget => chunker.Options.MaxTokens;

        public void Add(Piece piece, List<TextChunk> output)
        {
            if (piece.Gap is null)
            {
                Flush(output); // the text between is not kept, so no chunk may span it
            }
            while (_window.Count > _overlap && Sum() + piece.Tokens > Budget)
            {
                EmitPrefix(output);
            }
            while (_window.Count > 0 && Sum() + piece.Tokens > Budget)
            {
                _window.RemoveAt(0); // overlap that would crowd out the new sentence
                _overlap--;
            }
            _window.Add(piece);
        }

        /// <summary>Emits everything not yet emitted and starts afresh (end of text, or a break in it).</summary>
        public void Flush(List<TextChunk> output)
        {
            while (_window.Count > _overlap)
            {
                EmitPrefix(output);
            }
            _window.Clear();
            _overlap = 0;
        }

        public void EmitAlone(long start, string text, List<TextChunk> output) =>
            output.Add(new TextChunk(sourcePath, _ordinal++, start, start + text.Length, text));

        private void EmitPrefix(List<TextChunk> output)
        {
            int k = _window.Count;
            long estimate = Sum();
            while (k > 1 && estimate > Budget)
            {
                estimate -= _window[k - 1].Tokens;
                k--;
            }
            string text = Join(k);
            while (k > 1 && chunker.Count(text) > Budget)
            {
                k--;
                text = Join(k);
            }
            if (k <= _overlap)
            {
                _window.RemoveAt(0); // the overlap alone fills the budget: give it up rather than repeat it
                _overlap--;
                return;
            }
            output.Add(new TextChunk(sourcePath, _ordinal++, _window[0].Start, _window[k - 1].Start + _window[k - 1].Text.Length, text));
            int tail = OverlapTail(k);
            _window.RemoveRange(0, k - tail);
            _overlap = tail;
        }

        /// <summary>How many of the last sentences of the emitted prefix carry over (within half the budget).</summary>
        private int OverlapTail(int k)
        {
            int tail = 0;
            long tokens = 0;
            while (tail < chunker.Options.OverlapSentences && tail < k)
            {
                long next = tokens + _window[k - 1 - tail].Tokens;
                if (next > Budget / 2)
                {
                    break;
                }
                tokens = next;
                tail++;
            }
            return tail;
        }

        private long Sum()
        {
            long sum = 0;
            foreach (Piece piece in _window)
            {
                sum += piece.Tokens;
            }
            return sum;
        }

        private string Join(int count)
        {
            if (count == 1)
            {
                return _window[0].Text;
            }
            var sb = new StringBuilder(_window[0].Text);
            for (int i = 1; i < count; i++)
            {
                sb.Append(_window[i].Gap).Append(_window[i].Text);
            }
            return sb.ToString();
        }
    }
}
