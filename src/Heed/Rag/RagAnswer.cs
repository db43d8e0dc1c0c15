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
