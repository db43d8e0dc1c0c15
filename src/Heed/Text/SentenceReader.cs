namespace Heed.Text;

/// <summary>
/// Streams the sentences of a text from a <see cref="TextReader"/> with bounded memory: it holds one block plus the
/// sentence still being read. A "sentence" with no boundary for <see cref="MaxHeldChars"/> characters is cut at its
/// last whitespace so memory stays bounded on text without punctuation or line breaks.
/// </summary>
internal sealed class SentenceReader
{
    public const int MaxHeldChars = 1 << 20;
    private const int MaxGapChars = 1 << 16;

    private readonly TextReader _reader;
    private readonly int _blockChars;

    public SentenceReader(TextReader reader, int blockChars = 1 << 16)
    {
        _reader = reader;
        _blockChars = blockChars;
    }

    public IEnumerable<StreamedSentence> Read(CancellationToken cancellationToken = default)
    {
        char[] buffer = new char[Math.Max(_blockChars * 2, 16)];
        int length = 0;
        long bufferStart = 0; // offset in the whole text of buffer[0]
        int lastEnd = -1;     // end of the last sentence given out, within the buffer; -1 before the first or after a dropped gap
        bool first = true;
        var spans = new List<SentenceSpan>();
        bool endOfInput = false;
        while (!endOfInput)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (buffer.Length - length < _blockChars)
            {
                Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + _blockChars));
            }
            int read = _reader.ReadBlock(buffer, length, _blockChars);
            endOfInput = read == 0;
            length += read;
            // scan from the last sentence end so that the whitespace gap before the next sentence is still in the buffer
            int scanFrom = Math.Max(lastEnd, 0);
            spans.Clear();
            int held = scanFrom + SentenceSplitter.Scan(buffer.AsSpan(scanFrom, length - scanFrom), endOfInput, spans);
            if (!endOfInput && spans.Count == 0 && length - scanFrom > MaxHeldChars)
            {
                held = ForceCut(buffer, scanFrom, length, spans);
            }
            foreach (SentenceSpan local in spans)
            {
                int start = scanFrom + local.Start;
                string? gap = first ? "" : lastEnd < 0 ? null : new string(buffer, lastEnd, start - lastEnd);
                yield return new StreamedSentence(bufferStart + start, new string(buffer, start, local.Length), gap);
                first = false;
                lastEnd = start + local.Length;
            }
            // keep the tail, and the gap after the last sentence unless it has grown too long to be worth keeping
            int keepFrom = lastEnd >= 0 && held - lastEnd <= MaxGapChars ? Math.Min(lastEnd, held) : held;
            if (lastEnd >= 0 && keepFrom == held && lastEnd < held)
            {
                lastEnd = -1;
            }
            else if (lastEnd >= 0)
            {
                lastEnd -= keepFrom;
            }
            Array.Copy(buffer, keepFrom, buffer, 0, length - keepFrom);
            length -= keepFrom;
            bufferStart += keepFrom;
        }
    }

    /// <summary>Cuts an overlong run at its last whitespace (or a character boundary) and emits the part before.</summary>
    private static int ForceCut(char[] buffer, int from, int length, List<SentenceSpan> spans)
    {
        int cut = length - 1;
        while (cut > from && !char.IsWhiteSpace(buffer[cut]))
        {
            cut--;
        }
        if (cut <= from)
        {
            cut = length - 1;
            if (char.IsHighSurrogate(buffer[cut - 1]))
            {
                cut--;
            }
        }
        int start = from;
        while (start < cut && char.IsWhiteSpace(buffer[start]))
        {
            start++;
        }
        int end = cut;
        while (end > start && char.IsWhiteSpace(buffer[end - 1]))
        {
            end--;
        }
        if (end > start)
        {
            spans.Add(new SentenceSpan(start - from, end - start));
        }
        return cut;
    }
}
