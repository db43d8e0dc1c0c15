using Heed.Llama;

namespace Heed.Ranking;

/// <summary>
/// The token layout of an ICR prompt: [BOS + instruction] [doc 1] … [doc n] then a tail
/// (query instruction, "Query:", the query). Documents are packed into windows that each fit
/// the context together with the longer of the two tails.
/// </summary>
internal sealed class RerankPrompt
{
    private RerankPrompt(int[] queryTail, int[] calibrationTail, List<Window> windows)
    {
        QueryTail = queryTail;
        CalibrationTail = calibrationTail;
        Windows = windows;
    }

    public int[] QueryTail { get; }

    public int[] CalibrationTail { get; }

    public IReadOnlyList<Window> Windows { get; }

    /// <summary>A document's tokens inside a window: [Start, Start + Length).</summary>
    public readonly record struct DocumentSpan(int Index, int Start, int Length);

    public sealed record Window(int[] Tokens, IReadOnlyList<DocumentSpan> Documents);

    public static RerankPrompt Build(ITokenizer tokenizer, InContextRerankerOptions options, string query,
        IReadOnlyList<string> documents, int contextSize)
    {
        int[] head = tokenizer.Tokenize(options.Instruction);
        int[] Tail(string q) => tokenizer.Tokenize($"\n\n{options.QueryInstruction}\n\nQuery: {q.Trim()}", addSpecial: false);
        int[] queryTail = Tail(query);
        int[] calibrationTail = Tail(options.CalibrationQuery);
        int room = contextSize - head.Length - Math.Max(queryTail.Length, calibrationTail.Length);
        if (room <= 0)
        {
            throw new ArgumentException(
                $"The query takes {queryTail.Length} tokens with the instruction; with the {head.Length}-token header that leaves no " +
                $"room for documents in a context of {contextSize} tokens. Shorten the query or use a larger ContextSize.", nameof(query));
        }

        var windows = new List<Window>();
        var tokens = new List<int>(head);
        var spans = new List<DocumentSpan>();
        int numberInWindow = 0;
        for (int i = 0; i < documents.Count; i++)
        {
            int[] doc = tokenizer.Tokenize($"\n\n[{numberInWindow + 1}] {documents[i].Trim()}", addSpecial: false);
            if (doc.Length > room)
            {
                throw new ArgumentException(
                    $"Document {i} takes {doc.Length} tokens; at most {room} fit in one window of {contextSize} tokens next to the " +
                    "instruction and query. Split it into smaller chunks or use a larger ContextSize.", nameof(documents));
            }
            if (tokens.Count - head.Length + doc.Length > room)
            {
                windows.Add(new Window(tokens.ToArray(), spans));
                tokens = new List<int>(head);
                spans = [];
                numberInWindow = 0;
                doc = tokenizer.Tokenize($"\n\n[1] {documents[i].Trim()}", addSpecial: false);
            }
            spans.Add(new DocumentSpan(i, tokens.Count, doc.Length));
            tokens.AddRange(doc);
            numberInWindow++;
        }
        windows.Add(new Window(tokens.ToArray(), spans));
        return new RerankPrompt(queryTail, calibrationTail, windows);
    }
}
