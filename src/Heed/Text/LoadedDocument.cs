namespace Heed.Text;

/// <summary>A document read from a file: where it came from and its plain text.</summary>
/// <param name="SourcePath">The full path of the file.</param>
/// <param name="Title">The HTML title or the first Markdown heading; null when the file has none.</param>
/// <param name="Text">
/// The text: for .txt and .md the decoded file, for .html the visible text. Chunk offsets index into this string.
/// </param>
/// <param name="InvalidUtf8Sequences">How many invalid UTF-8 byte sequences were replaced with U+FFFD.</param>
public sealed record LoadedDocument(string SourcePath, string? Title, string Text, int InvalidUtf8Sequences);
