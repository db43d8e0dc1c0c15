using System.Text;
using Microsoft.Extensions.AI;

namespace Heed.Rag;

/// <summary>The chat messages that ask a model to answer from numbered sources and cite them as [n].</summary>
internal static class AnswerPrompt
{
    public const string Instructions =
        "Answer the question using only the numbered sources. After each statement, cite the source it comes from " +
        "by its number in square brackets, like [1] or [2][3]. If the sources do not contain the answer, say that " +
        "you do not know. Be concise.";

    public static List<ChatMessage> Build(string question, IReadOnlyList<Citation> sources)
    {
        var user = new StringBuilder("Sources:\n");
        foreach (Citation source in sources)
        {
            user.Append('[').Append(source.Number).Append("] (").Append(Path.GetFileName(source.SourcePath)).Append(") ")
                .Append(source.Text.ReplaceLineEndings(" ")).Append('\n');
        }
        user.Append("\nQuestion: ").Append(question.Trim());
        return [new ChatMessage(ChatRole.System, Instructions), new ChatMessage(ChatRole.User, user.ToString())];
    }
}
