namespace Heed.Text;

/// <summary>A passage of a document: what retrieval finds and answers cite.</summary>
/// <param name="SourcePath">The file it comes from.</param>
/// <param name="Ordinal">Its position among the chunks of that file, from 0.</param>
/// <param name="StartOffset">Offset of its first character in the document's text (UTF-16 code units).</param>
/// <param name="EndOffset">Offset just past its last character; the text is exactly the document's text in [start, end).</param>
/// <param name="Text">The passage.</param>
public sealed record TextChunk(string SourcePath, int Ordinal, long StartOffset, long EndOffset, string Text);
