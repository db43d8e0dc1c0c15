using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Heed.Mcp.Tests;

/// <summary>`heed mcp` as a child process, driven by the official MCP C# client over stdio.</summary>
public sealed class McpServerTests(HeedProcess heed) : IClassFixture<HeedProcess>
{
    private async Task<McpClient> ConnectAsync(CancellationToken cancellationToken)
    {
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "heed",
            Command = HeedProcess.DotnetHost,
            Arguments =
            [
                heed.HeedDll, "mcp", "--model", heed.ModelPath, "--allowed-root", heed.Documents,
                "--context", "512", "--pool", "1", "--chat-template", "chatml", "--gpu-layers", "0",
            ],
        });
        return await McpClient.CreateAsync(transport, cancellationToken: cancellationToken);
    }

    private static string Text(CallToolResult result) =>
        string.Concat(result.Content.OfType<TextContentBlock>().Select(b => b.Text));

    [Fact]
    public async Task ServesTheToolsOverStdio()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await using McpClient client = await ConnectAsync(cts.Token);

        IList<McpClientTool> tools = await client.ListToolsAsync(cancellationToken: cts.Token);
        Assert.Equal(["ask_long_document", "ingest_documents", "rerank_documents", "search_knowledge_base"], tools.Select(t => t.Name).Order());
        McpClientTool rerankTool = tools.Single(t => t.Name == "rerank_documents");
        Assert.Contains("attention", rerankTool.Description);
        Assert.True(rerankTool.JsonSchema.GetProperty("properties").TryGetProperty("documents", out _));

        string[] documents = ["the pass key is 4321 .", "the quick brown fox .", "attention finds the answer ."];
        CallToolResult rerank = await client.CallToolAsync("rerank_documents",
            new Dictionary<string, object?> { ["query"] = "what is the pass key ?", ["documents"] = documents }, cancellationToken: cts.Token);
        Assert.NotEqual(true, rerank.IsError);
        using (JsonDocument ranked = JsonDocument.Parse(Text(rerank)))
        {
            JsonElement[] items = ranked.RootElement.EnumerateArray().ToArray();
            Assert.Equal([0, 1, 2], items.Select(i => i.GetProperty("index").GetInt32()).Order());
            Assert.All(items, i => Assert.Equal(documents[i.GetProperty("index").GetInt32()], i.GetProperty("text").GetString()));
            double[] scores = items.Select(i => i.GetProperty("score").GetDouble()).ToArray();
            Assert.Equal(scores.OrderDescending(), scores);
        }

        CallToolResult ingest = await client.CallToolAsync("ingest_documents",
            new Dictionary<string, object?> { ["paths"] = new[] { heed.Documents } }, cancellationToken: cts.Token);
        Assert.NotEqual(true, ingest.IsError);
        using (JsonDocument summary = JsonDocument.Parse(Text(ingest)))
        {
            Assert.Equal(2, summary.RootElement.GetProperty("documents").GetInt32());
        }

        CallToolResult search = await client.CallToolAsync("search_knowledge_base",
            new Dictionary<string, object?> { ["query"] = "pass key", ["topK"] = 3 }, cancellationToken: cts.Token);
        Assert.NotEqual(true, search.IsError);
        using (JsonDocument hits = JsonDocument.Parse(Text(search)))
        {
            JsonElement[] found = hits.RootElement.EnumerateArray().ToArray();
            Assert.NotEmpty(found);
            Assert.Contains(found, h => h.GetProperty("source").GetString() == Path.Combine(heed.Documents, "keys.txt")
                                        && h.GetProperty("text").GetString()!.Contains("pass key"));
            Assert.DoesNotContain(found, h => h.GetProperty("source").GetString()!.Contains("secret"));
        }
    }

    [Fact]
    public async Task RefusesToIngestOutsideTheAllowedRoots()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await using McpClient client = await ConnectAsync(cts.Token);
        foreach (string path in new[] { heed.Outside, Path.Combine(heed.Documents, "..", "docs-outside"), "/etc" })
        {
            CallToolResult refused = await client.CallToolAsync("ingest_documents",
                new Dictionary<string, object?> { ["paths"] = new[] { path } }, cancellationToken: cts.Token);
            Assert.True(refused.IsError, $"ingesting {path} must fail");
            Assert.Contains("outside the allowed roots", Text(refused));
        }
        CallToolResult search = await client.CallToolAsync("search_knowledge_base",
            new Dictionary<string, object?> { ["query"] = "secret" }, cancellationToken: cts.Token);
        Assert.NotEqual(true, search.IsError);
        Assert.Equal("[]", Text(search).Trim());
    }

    [Fact]
    public async Task BadModelPathFailsWithOneClearLine()
    {
        (int exitCode, string output, string error) = await heed.RunAsync("", TimeSpan.FromMinutes(1),
            "mcp", "--model", Path.Combine(heed.Directory, "missing.gguf"));
        Assert.Equal(1, exitCode);
        Assert.Contains("Heed:ModelPath", error);
        Assert.Equal("", output);
    }
}
