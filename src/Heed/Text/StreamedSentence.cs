namespace Heed.Text;

/// <summary>A sentence read from a stream.</summary>
/// <param name="Start">Character offset of its first character in the whole text.</param>
/// <param name="Text">The sentence, trimmed.</param>
/// <param name="Gap">
/// The exact whitespace between the previous sentence and this one (empty for the first); null when that gap was
/// too long to keep, in which case a chunk must not span it.
/// </param>
internal readonly record struct StreamedSentence(long Start, string Text, string? Gap)
{
    public long End => Start + Text.Length;
}
