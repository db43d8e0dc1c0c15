namespace Heed.Text;

/// <summary>Where a sentence lies in a text.</summary>
/// <param name="Start">Index of its first character.</param>
/// <param name="Length">Its length in characters (UTF-16 code units).</param>
public readonly record struct SentenceSpan(int Start, int Length)
{
    /// <summary>Index just past its last character.</summary>
    public int End => Start + Length;
}
