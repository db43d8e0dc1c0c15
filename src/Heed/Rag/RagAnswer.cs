namespace Heed.Rag;

/// <summary>An answer with the sources it rests on.</summary>
/// <param name="Question">The question asked.</param>
/// <param name="Text">The model's answer, with [n] markers.</param>
/// <param name="Citations">The sources the answer actually cites, in order of first citation.</param>
/// <param name="Sources">Every source given to the model, numbered from 1.</param>
/// <param name="CitedNumbers">The valid [n] numbers found in the answer, in order of first appearance.</param>
public sealed record RagAnswer(string Question, string Text, IReadOnlyList<Citation> Citations, IReadOnlyList<Citation> Sources, IReadOnlyList<int> CitedNumbers)
{
    /// <summary>False when the index had nothing relevant, so no model was asked.</summary>
    public bool FoundSources => Sources.Count > 0;
}

/// <summary>A source given to the model for an answer, under the number the answer cites it by.</summary>
/// <param name="Number">Its number n, cited as [n].</param>
/// <param name="SourcePath">The file it comes from.</param>
/// <param name="Ordinal">The chunk's position in that file.</param>
/// <param name="StartOffset">Offset of the passage in the document's text.</param>
/// <param name="EndOffset">Offset just past the passage.</param>
/// <param name="Text">The passage.</param>
/// <param name="Score">Its retrieval score (see <see cref="SearchHit.Score"/>).</param>
public sealed record Citation(int Number, string SourcePath, int Ordinal, long StartOffset, long EndOffset, string Text, double Score);
