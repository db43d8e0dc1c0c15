using Heed.AI;
using Heed.Llama;

namespace Heed.Ranking;

/// <summary>
/// The token layout of an ICR prompt: a head (BOS where the vocabulary adds one, the chat
/// template's opening of the user turn when used, the instruction), the documents as
/// "\n\n[k] text" (or "\n\n[*] text" without numbers), then a tail: "\n\n" + query instruction +
/// "\n\nQuery:" and the query (or the calibration query). Documents are packed into windows that
/// fit the context next to the longer tail.
/// </summary>
internal sealed class RerankPrompt
{
    private readonly ITokenizer _tokenizer;
    private readonly int[] _head;
    private readonly int _room;
    private readonly int _contextSize;
    private readonly bool _numberDocuments;

    private RerankPrompt(ITokenizer tokenizer, int[] head, Tail query, Tail calibration, int contextSize, bool paperConvention,
        bool numberDocuments)
    {
        _numberDocuments = numberDocuments;
        _tokenizer = tokenizer;
        _head = head;
        _contextSize = contextSize;
        Query = query;
        Calibration = calibration;
        PaperConvention = paperConvention;
        _room = contextSize - head.Length - Math.Max(query.Tokens.Length, calibration.Tokens.Length);
    }

    /// <summary>The query's tail and the rows whose attention is read.</summary>
    public Tail Query { get; }

    /// <summary>The calibration query's tail and the rows whose attention is read.</summary>
    public Tail Calibration { get; }

    /// <summary>Rows and spans as the authors read them (whole tail, delimiters inside the spans).</summary>
    public bool PaperConvention { get; }

    /// <summary>
    /// Tokens decoded after the documents; attention is read from the rows [RowsStart, Tokens.Length).
    /// </summary>
    public readonly record struct Tail(int[] Tokens, int RowsStart)
    {
        public int Rows => Tokens.Length - RowsStart;
    }

    /// <summary>
    /// A document's scored tokens inside a window: [Start, Start + Length); its block (delimiter and
    /// text, what block ICR encodes on its own) is [BlockStart, Start + Length).
    /// </summary>
    public readonly record struct DocumentSpan(int Index, int Start, int Length, int BlockStart)
    {
        public int BlockEnd => Start + Length;
    }

    /// <summary>The tokens before the first document (BOS, template opening, instruction).</summary>
    public ReadOnlySpan<int> Head => _head;

    public sealed record Window(int[] Tokens, IReadOnlyList<DocumentSpan> Documents);

    public static RerankPrompt Build(IInferenceEngine model, InContextRerankerOptions options, string query, int contextSize)
    {
        ITokenizer tokenizer = model.Tokenizer;
        (string opening, string closing) = options.UseChatTemplate ? UserTurn(model) : ("", "");
        int[] head = tokenizer.Tokenize(opening + options.Instruction, addSpecial: true, parseSpecial: true);
        if (head.Length > 1 && head[0] == tokenizer.BeginningOfSequence && head[1] == head[0])
        {
            head = head[1..]; // the template wrote BOS itself
        }

        string tailText = $"\n\n{options.QueryInstruction}\n\nQuery: ";
        int[] Tokens(string q) => tokenizer.Tokenize(tailText + q.Trim(), addSpecial: false);
        int[] queryTail = Tokens(query), calibrationTail = Tokens(options.CalibrationQuery);
        Tail queryRows, calibrationRows;
        if (options.UsePaperConvention)
        {
            // The authors read every row after the documents, including the template's closing of the turn.
            int[] closingTokens = tokenizer.Tokenize(closing, addSpecial: false, parseSpecial: true);
            queryRows = new Tail([.. queryTail, .. closingTokens], 0);
            calibrationRows = new Tail([.. calibrationTail, .. closingTokens], 0);
        }
        else
        {
            // Rows with the same tokens at the same positions after the same documents attend
            // identically; leaving them out of both means they cancel exactly. Rows after the
            // query cannot change what the query rows see (causal attention), so they are not decoded.
            // A query that is the start of the calibration query (or equal to it) keeps its last row.
            int shared = Math.Min(queryTail.AsSpan().CommonPrefixLength(calibrationTail), Math.Min(queryTail.Length, calibrationTail.Length) - 1);
            queryRows = new Tail(queryTail, shared);
            calibrationRows = new Tail(calibrationTail, shared);
        }

        var prompt = new RerankPrompt(tokenizer, head, queryRows, calibrationRows, contextSize, options.UsePaperConvention,
            options.NumberDocuments);
        if (prompt._room <= 0)
        {
            throw new ArgumentException(
                $"The query takes {queryRows.Tokens.Length} tokens with the instruction; with the {head.Length}-token header that leaves no " +
                $"room for documents in a context of {contextSize} tokens. Shorten the query or use a larger ContextSize.", nameof(query));
        }
        return prompt;
    }

    /// <summary>Packs the documents, in the given order, into as few consecutive windows as fit.</summary>
    /// <param name="documents">All documents of the call.</param>
    /// <param name="indices">Which of them to pack, in order.</param>
    public List<Window> Pack(IReadOnlyList<string> documents, IReadOnlyList<int> indices)
    {
        var windows = new List<Window>();
        var builder = new WindowBuilder(this);
        foreach (int index in indices)
        {
            if (!builder.TryAdd(documents, index))
            {
                windows.Add(builder.Build());
                builder = new WindowBuilder(this);
                if (!builder.TryAdd(documents, index))
                {
                    throw new ArgumentException(
                        $"Document {index} takes more than the {_room} tokens that fit in one window of {_contextSize} tokens next to the " +
                        "instruction and query. Split it into smaller chunks or use a larger ContextSize.", nameof(documents));
                }
            }
        }
        windows.Add(builder.Build());
        return windows;
    }

    /// <summary>The longest leading run of <paramref name="indices"/> that fits in one window.</summary>
    public Window PackOne(IReadOnlyList<string> documents, IReadOnlyList<int> indices)
    {
        var builder = new WindowBuilder(this);
        foreach (int index in indices)
        {
            if (!builder.TryAdd(documents, index))
            {
                break;
            }
        }
        return builder.Build();
    }

    // The text the model's chat template puts before and after a user message, split around a marker.
    private static (string Opening, string Closing) UserTurn(IInferenceEngine model)
    {
        if (model.GetMetadata("tokenizer.chat_template") is not { Length: > 0 } own)
        {
            return ("", "");
        }
        ChatTemplate template;
        try
        {
            template = ChatTemplate.FromName(own);
        }
        catch (ArgumentException)
        {
            return ("", ""); // llama.cpp does not know this template's family: plain text, as for a base model
        }
        const string marker = "\u0001heed-rerank-content\u0001";
        string turn = template.Format([("user", marker)], addAssistantPrompt: true);
        int at = turn.IndexOf(marker, StringComparison.Ordinal);
        return at < 0 ? ("", "") : (turn[..at], turn[(at + marker.Length)..]);
    }

    private sealed class WindowBuilder(RerankPrompt prompt)
    {
        private readonly List<int> _tokens = [.. prompt._head];
        private readonly List<DocumentSpan> _spans = [];

        public bool TryAdd(IReadOnlyList<string> documents, int index)
        {
            string delimiter = prompt._numberDocuments ? $"\n\n[{_spans.Count + 1}]" : "\n\n[*]";
            int[] tokens = prompt._tokenizer.Tokenize($"{delimiter} {documents[index].Trim()}", addSpecial: false);
            if (_tokens.Count - prompt._head.Length + tokens.Length > prompt._room)
            {
                return false;
            }
            // Heed scores the document's own tokens; the authors include the "[k]" delimiter.
            int skip = prompt.PaperConvention ? 0 : DelimiterLength(delimiter, tokens);
            _spans.Add(new DocumentSpan(index, _tokens.Count + skip, tokens.Length - skip, _tokens.Count));
            _tokens.AddRange(tokens);
            return true;
        }

        public Window Build() => new(_tokens.ToArray(), _spans);

        // The delimiter's tokens when the tokenizer keeps them apart from the text; else none.
        private int DelimiterLength(string delimiter, int[] tokens)
        {
            int[] own = prompt._tokenizer.Tokenize(delimiter, addSpecial: false);
            int shared = own.AsSpan().CommonPrefixLength(tokens);
            return shared == own.Length && shared < tokens.Length ? shared : 0;
        }
    }
}
