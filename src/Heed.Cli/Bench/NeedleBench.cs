using System.Diagnostics;
using Heed.Llama;
using Heed.Retrieval;
using Heed.Search;

namespace Heed.Cli.Bench;

/// <summary>
/// Needles in held-out prose, answered three ways from the same haystack: InfiniRetri; the
/// document truncated to what fits the context; and the paragraphs BM25 ranks best for the
/// question, as many as fit, read in document order. All three answer with the same prompt tail
/// and the same generation settings, so they differ only in what text the model reads.
/// </summary>
internal sealed class NeedleBench(LlamaModel model, InfiniteRetriever retriever, int contextSize) : IDisposable
{
    public const string InfiniRetri = "InfiniRetri", Truncation = "truncation", Bm25Read = "BM25 chunks + read";

    public static readonly string[] Methods = [InfiniRetri, Truncation, Bm25Read];

    private static readonly int AnswerTokens = new InfiniteRetrieverOptions().AnswerMaxTokens;

    private readonly LlamaContext _reader = model.CreateContext(new LlamaContextOptions { ContextSize = contextSize });

    public sealed record Outcome(string Method, bool Found, double Seconds, string Answer);

    /// <summary>
    /// A haystack of about <paramref name="chars"/> characters: the split's paragraphs from a random
    /// page on, cycled; the needle's sentences appended to the paragraph at <paramref name="depth"/>
    /// (a multi-needle template's sentences spread evenly from there), each distractor at a random depth.
    /// </summary>
    public static List<string> BuildHaystack(IReadOnlyList<string> prose, long chars, Needle needle, double depth, Random random)
    {
        var paragraphs = new List<string>();
        long length = 0;
        for (int i = random.Next(prose.Count); length < chars; i = (i + 1) % prose.Count)
        {
            paragraphs.Add(prose[i]);
            length += prose[i].Length + 2;
        }
        IEnumerable<(double Depth, string Text)> inserts = needle.Template.PlacedApart
            ? needle.Sentences.Select((s, j) => ((depth + (double)j / needle.Sentences.Count) % 1.0, s))
            : [(depth, string.Join(" ", needle.Sentences))];
        foreach ((double at, string text) in inserts.Concat(needle.Template.Distractors.Select(d => (random.NextDouble(), d))))
        {
            int index = (int)Math.Round(at * (paragraphs.Count - 1));
            paragraphs[index] = paragraphs[index] + " " + text;
        }
        return paragraphs;
    }

    public async Task<IReadOnlyList<Outcome>> RunAsync(Needle needle, IReadOnlyList<string> paragraphs, bool withPeers, CancellationToken cancellationToken)
    {
        string question = needle.Template.Question;
        var outcomes = new List<Outcome>();
        var clock = Stopwatch.StartNew();
        RetrievalResult found = await retriever.RetrieveAsync(question, string.Join("\n\n", paragraphs), null, cancellationToken);
        Add(InfiniRetri, await retriever.AnswerFromEvidenceAsync(question, found, cancellationToken));
        if (withPeers)
        {
            clock.Restart();
            Add(Truncation, await ReadAsync(Truncate(paragraphs, ReadingBudget(question)), question, cancellationToken));
            clock.Restart();
            Add(Bm25Read, await ReadAsync(SelectByBm25(paragraphs, question, ReadingBudget(question)), question, cancellationToken));
        }
        return outcomes;

        void Add(string method, string answer) => outcomes.Add(new Outcome(method, needle.FoundIn(answer), clock.Elapsed.TotalSeconds, answer));
    }

    // Tokens of document text that fit with BOS, the question tail and the answer (a few spare for re-tokenizing).
    private int ReadingBudget(string question) => contextSize - model.Tokenizer.CountTokens(Tail(question)) - AnswerTokens - 8;

    private static string Tail(string question) => $"\nQuestion: {question}\nAnswer:";

    private string Truncate(IReadOnlyList<string> paragraphs, int budget)
    {
        // Tokenize only a prefix comfortably longer than the budget (no tokenizer packs 16 chars into one token).
        var prefix = new System.Text.StringBuilder();
        for (int i = 0; i < paragraphs.Count && prefix.Length < budget * 16L; i++)
        {
            prefix.Append(paragraphs[i]).Append("\n\n");
        }
        int[] tokens = model.Tokenizer.Tokenize(prefix.ToString(), addSpecial: false);
        return model.Tokenizer.Detokenize(tokens.AsSpan(0, Math.Min(budget, tokens.Length)));
    }

    private string SelectByBm25(IReadOnlyList<string> paragraphs, string question, int budget)
    {
        var chosen = new List<int>();
        int used = 0;
        foreach (Bm25Hit hit in new Bm25Index(paragraphs).Search(question, paragraphs.Count))
        {
            int tokens = model.Tokenizer.CountTokens(paragraphs[hit.Document]) + 2;
            if (used + tokens <= budget)
            {
                chosen.Add(hit.Document);
                used += tokens;
            }
            if (budget - used < 16)
            {
                break;
            }
        }
        chosen.Sort();
        return string.Join("\n\n", chosen.Select(i => paragraphs[i]));
    }

    private async Task<string> ReadAsync(string text, string question, CancellationToken cancellationToken)
    {
        var options = new GenerationOptions { MaxTokens = AnswerTokens, StopSequences = ["\n"] };
        var answer = new System.Text.StringBuilder();
        await foreach (string piece in _reader.GenerateAsync(text + Tail(question), options, cancellationToken))
        {
            answer.Append(piece);
        }
        return answer.ToString().Trim();
    }

    public void Dispose() => _reader.Dispose();
}
