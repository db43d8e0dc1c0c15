using System.Text;
using System.Text.RegularExpressions;
using Heed.Llama;

namespace Heed.Cli.Bench;

/// <summary>
/// The generative listwise baseline (RankGPT style), for comparison only: the model reads the
/// numbered passages and the query and writes a permutation "[3] > [1] > …". Passages it does
/// not name keep their input order after the named ones.
/// </summary>
internal sealed partial class ListwiseReranker(LlamaModel model, int contextSize) : IDisposable
{
    private readonly LlamaContext _context = model.CreateContext(new LlamaContextOptions { ContextSize = contextSize });

    [GeneratedRegex(@"\[(\d+)\]")]
    private static partial Regex Identifier();

    public async Task<IReadOnlyList<int>> RankAsync(string query, IReadOnlyList<string> passages, CancellationToken cancellationToken)
    {
        var prompt = new StringBuilder($"Rank the {passages.Count} passages by relevance to the query.\n\n");
        for (int i = 0; i < passages.Count; i++)
        {
            prompt.Append($"[{i + 1}] {passages[i]}\n");
        }
        prompt.Append($"\nQuery: {query}\nRanking, most relevant first: [");
        var output = new StringBuilder("[");
        var options = new GenerationOptions { MaxTokens = passages.Count * 5 + 8, StopSequences = ["\n"] };
        await foreach (string piece in _context.GenerateAsync(prompt.ToString(), options, cancellationToken))
        {
            output.Append(piece);
        }
        var order = new List<int>();
        foreach (Match m in Identifier().Matches(output.ToString()))
        {
            if (int.TryParse(m.Groups[1].Value, out int n) && n >= 1 && n <= passages.Count && !order.Contains(n - 1))
            {
                order.Add(n - 1);
            }
        }
        order.AddRange(Enumerable.Range(0, passages.Count).Where(i => !order.Contains(i)));
        return order;
    }

    public void Dispose() => _context.Dispose();
}
