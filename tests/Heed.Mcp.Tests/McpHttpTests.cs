using System.Diagnostics;
using System.Net;
using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Heed.Mcp.Tests;

/// <summary>`heed mcp --http 0` as a child process on loopback, driven by the official MCP C# client over streamable HTTP.</summary>
public sealed class McpHttpTests(HeedProcess heed) : IClassFixture<HeedProcess>
{
    private const string Key = "test-key-0123456789abcdef";

    [Fact]
    public async Task Lists_and_calls_the_tools_with_the_key_and_refuses_without_it()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await using HttpServer server = await HttpServer.StartAsync(heed, Key, cts.Token);

        await using (McpClient client = await server.ConnectAsync(Key, cts.Token))
        {
            IList<McpClientTool> tools = await client.ListToolsAsync(cancellationToken: cts.Token);
            Assert.Equal(["ask_long_document", "ingest_documents", "rerank_documents", "search_knowledge_base"], tools.Select(t => t.Name).Order());
            CallToolResult ingest = await client.CallToolAsync("ingest_documents",
                new Dictionary<string, object?> { ["paths"] = new[] { heed.Documents } }, cancellationToken: cts.Token);
            Assert.NotEqual(true, ingest.IsError);
            CallToolResult search = await client.CallToolAsync("search_knowledge_base",
                new Dictionary<string, object?> { ["query"] = "pass key", ["topK"] = 2 }, cancellationToken: cts.Token);
            Assert.NotEqual(true, search.IsError);
            // the test model's weights are random, so its reranking is noise: the passage must be among the hits, not first
            using JsonDocument hits = JsonDocument.Parse(Text(search));
            Assert.Contains(hits.RootElement.EnumerateArray(), h => h.GetProperty("source").GetString() == Path.Combine(heed.Documents, "keys.txt"));
        }

        foreach (string? wrong in new[] { null, "", "test-key-0123456789abcdeX", Key + "0" })
        {
            // the client cannot even initialize; nothing reaches a tool
            await Assert.ThrowsAnyAsync<Exception>(() => server.ConnectAsync(wrong, cts.Token));
            using var raw = new HttpClient();
            using var request = new HttpRequestMessage(HttpMethod.Post, server.Endpoint)
            {
                Content = new StringContent("""{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ingest_documents","arguments":{"paths":["/"]}}}""",
                    System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Accept.ParseAdd("application/json, text/event-stream");
            if (wrong is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", $"Bearer {wrong}");
            }
            using HttpResponseMessage response = await raw.SendAsync(request, cts.Token);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("", await response.Content.ReadAsStringAsync(cts.Token));
        }
    }

    [Fact]
    public async Task Ingest_stays_inside_the_allowed_roots()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await using HttpServer server = await HttpServer.StartAsync(heed, Key, cts.Token);
        await using McpClient client = await server.ConnectAsync(Key, cts.Token);
        foreach (string path in new[] { heed.Outside, Path.Combine(heed.Documents, "..", "docs-outside"), "/etc" })
        {
            CallToolResult refused = await client.CallToolAsync("ingest_documents",
                new Dictionary<string, object?> { ["paths"] = new[] { path } }, cancellationToken: cts.Token);
            Assert.True(refused.IsError);
            Assert.Contains("allowed", Text(refused));
        }
        CallToolResult search = await client.CallToolAsync("search_knowledge_base",
            new Dictionary<string, object?> { ["query"] = "secret", ["topK"] = 3 }, cancellationToken: cts.Token);
        Assert.DoesNotContain("not for the model", Text(search));
    }

    [Fact]
    public async Task Fifty_concurrent_tool_calls_are_all_answered()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await using HttpServer server = await HttpServer.StartAsync(heed, Key, cts.Token);
        await using McpClient client = await server.ConnectAsync(Key, cts.Token);
        Assert.NotEqual(true, (await client.CallToolAsync("ingest_documents",
            new Dictionary<string, object?> { ["paths"] = new[] { heed.Documents } }, cancellationToken: cts.Token)).IsError);

        CallToolResult[] results = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => client.CallToolAsync(
            i % 2 == 0 ? "search_knowledge_base" : "rerank_documents",
            i % 2 == 0
                ? new Dictionary<string, object?> { ["query"] = i % 4 == 0 ? "pass key" : "brown fox", ["topK"] = 2 }
                : new Dictionary<string, object?> { ["query"] = "what is the pass key ?", ["documents"] = new[] { "the pass key is 4321 .", $"call {i} ." } },
            cancellationToken: cts.Token).AsTask()));

        for (int i = 0; i < results.Length; i++)
        {
            Assert.NotEqual(true, results[i].IsError);
            using JsonDocument json = JsonDocument.Parse(Text(results[i]));
            if (i % 2 == 0)
            {
                Assert.Contains(json.RootElement.EnumerateArray(),
                    h => h.GetProperty("source").GetString() == Path.Combine(heed.Documents, i % 4 == 0 ? "keys.txt" : "fox.md"));
            }
            else
            {
                Assert.Equal([0, 1], json.RootElement.EnumerateArray().Select(d => d.GetProperty("index").GetInt32()).Order());
            }
        }
    }

    [Fact]
    public async Task Http_without_a_key_does_not_start()
    {
        Assert.Null(Environment.GetEnvironmentVariable("HEED_MCP_KEY"));
        (int exitCode, _, string error) = await heed.RunAsync("", TimeSpan.FromMinutes(2),
            "mcp", "--http", "0", "--model", heed.ModelPath, "--gpu-layers", "0");
        Assert.Equal(1, exitCode);
        Assert.Contains("--http needs a key", error);
    }

    private static string Text(CallToolResult result) => string.Concat(result.Content.OfType<TextContentBlock>().Select(b => b.Text));

    /// <summary>A `heed mcp --http 0` process; the port it bound is read from its "serving" line on stderr.</summary>
    private sealed class HttpServer : IAsyncDisposable
    {
        private readonly Process _process;

        private HttpServer(Process process, Uri endpoint)
        {
            _process = process;
            Endpoint = endpoint;
        }

        public Uri Endpoint { get; }

        public static async Task<HttpServer> StartAsync(HeedProcess heed, string key, CancellationToken cancellationToken)
        {
            var start = new ProcessStartInfo(HeedProcess.DotnetHost) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string argument in new[] { heed.HeedDll, "mcp", "--http", "0", "--model", heed.ModelPath, "--allowed-root", heed.Documents,
                         "--context", "512", "--pool", "2", "--chat-template", "chatml", "--gpu-layers", "0" })
            {
                start.ArgumentList.Add(argument);
            }
            start.Environment["HEED_MCP_KEY"] = key;
            Process process = Process.Start(start)!;
            _ = process.StandardOutput.ReadToEndAsync(cancellationToken);
            while (await process.StandardError.ReadLineAsync(cancellationToken) is { } line)
            {
                const string serving = "heed mcp: serving ";
                if (line.StartsWith(serving, StringComparison.Ordinal))
                {
                    _ = process.StandardError.ReadToEndAsync(cancellationToken);
                    return new HttpServer(process, new Uri(line[serving.Length..]));
                }
            }
            await process.WaitForExitAsync(cancellationToken);
            throw new InvalidOperationException($"heed mcp --http exited ({process.ExitCode}) before serving");
        }

        public async Task<McpClient> ConnectAsync(string? key, CancellationToken cancellationToken)
        {
            var options = new HttpClientTransportOptions { Endpoint = Endpoint, TransportMode = HttpTransportMode.StreamableHttp };
            if (key is not null)
            {
                options.AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = $"Bearer {key}" };
            }
            return await McpClient.CreateAsync(new HttpClientTransport(options), cancellationToken: cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }
}
