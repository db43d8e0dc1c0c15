using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace Heed.Tests.Rag;

/// <summary>
/// A chat client that records the messages it gets and answers by citing the sources whose text contains a
/// keyword, so a test can check that the numbers in the answer lead back to the right files.
/// </summary>
internal sealed partial class FakeChatClient(string keyword, string extraText = "") : IChatClient
{
    public List<IReadOnlyList<ChatMessage>> Calls { get; } = [];

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        List<ChatMessage> list = messages.ToList();
        Calls.Add(list);
        string prompt = list.Last().Text;
        var cited = new List<string>();
        foreach (Match m in SourceLine().Matches(prompt))
        {
            if (m.Groups[2].Value.Contains(keyword, StringComparison.OrdinalIgnoreCase))
            {
                cited.Add($"[{m.Groups[1].Value}]");
            }
        }
        string answer = cited.Count == 0 ? "I do not know." : $"The sources say so {string.Join("", cited)}.{extraText}";
        return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, answer)));
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }

    [GeneratedRegex(@"^\[(\d+)\] (.*)$", RegexOptions.Multiline)]
    private static partial Regex SourceLine();
}
