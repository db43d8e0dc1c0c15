namespace Heed.Rag;

/// <summary>A source given to the model for an answer, under the number the answer cites it by.</summary>
/// <param name="Number">Its number n, cited as [n].</param>
/// <param name="SourcePath">The file it comes from.</param>
/// <param name="Ordinal">The chunk's position in that file.</param>
/// <param name="StartOffset">Offset of the passage in the document's text.</param>
/// <param name="EndOffset">Offset just past the passage.</param>
/// <param name="Text">The passage.</param>
/// <param name="Score">Its retrieval score (see <see cref="SearchHit.Score"/>).</param>
public sealed record Citation(int Number, string SourcePath, int Ordinal, long StartOffset, long EndOffset, string Text, double Score);
