using System.CommandLine;
using Heed.AI;
using Heed.Hosting;
using Heed.Llama;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Heed.Cli.Commands;

/// <summary>
/// `heed mcp --model M`: serves Heed's tools (rerank_documents, search_knowledge_base,
/// ask_long_document, ingest_documents) to MCP clients over stdio. Standard output carries the
/// protocol only; logs go to standard error.
/// </summary>
internal static class McpCommand
{
    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var allowedRoots = new Option<DirectoryInfo[]>("--allowed-root")
        {
            Description = "A folder ingest_documents and ask_long_document may read (repeat for more); none: no file is read",
            AllowMultipleArgumentsPerToken = false,
        };
        var index = new Option<FileInfo?>("--index") { Description = "The knowledge base's index file (created if missing); none: in memory" };
        var contextSize = new Option<int>("--context") { Description = "Context size in tokens (0: the model's)", DefaultValueFactory = _ => 2048 };
        var poolSize = new Option<int>("--pool") { Description = "Requests served at once", DefaultValueFactory = _ => 2 };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "llama.cpp template name for models without a usable one (e.g. chatml)" };
        var command = new Command("mcp", "Serve Heed's tools over MCP (stdio)")
        {
            model, allowedRoots, index, contextSize, poolSize, chatTemplate, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse.GetValue(model)!, parse.GetValue(allowedRoots) ?? [], parse.GetValue(index), parse.GetValue(contextSize),
            parse.GetValue(poolSize), parse.GetValue(chatTemplate), parse.GetValue(gpuLayers), parse.GetValue(verbose), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(FileInfo model, DirectoryInfo[] allowedRoots, FileInfo? index, int contextSize, int poolSize,
        string? chatTemplate, int gpuLayers, bool verbose, CancellationToken cancellationToken)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        // stdout is the MCP channel: every log line goes to stderr.
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning);
        builder.Services.AddHeed(o =>
        {
            o.ModelPath = model.FullName;
            o.GpuLayers = gpuLayers;
            o.ContextSize = contextSize;
            o.PoolSize = poolSize;
            o.FallbackChatTemplate = chatTemplate;
            o.IndexPath = index?.FullName;
            o.AllowedRoots = allowedRoots.Select(d => d.FullName).ToList();
        });
        builder.Services.AddMcpServer(o => o.ServerInfo = new Implementation
            {
                Name = "heed",
                Version = typeof(McpCommand).Assembly.GetName().Version?.ToString() ?? "0",
            })
            .WithStdioServerTransport();
        foreach (string name in new[] { "rerank_documents", "search_knowledge_base", "ask_long_document", "ingest_documents" })
        {
            builder.Services.AddSingleton(sp => McpServerTool.Create(
                new ClearErrors(sp.GetRequiredService<HeedTools>().Functions.Single(f => f.Name == name))));
        }

        using IHost host = builder.Build();
        if (verbose)
        {
            LlamaBackend.Logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("llama.cpp");
        }
        try
        {
            await host.RunAsync(cancellationToken);
            return 0;
        }
        catch (Exception e) when (e is Microsoft.Extensions.Options.OptionsValidationException or HeedModelFormatException
                                       or HeedNativeException or DllNotFoundException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// Turns the tools' expected failures into <see cref="McpException"/>s, whose message the MCP
    /// client sees (other exceptions reach it only as "an error occurred").
    /// </summary>
    private sealed class ClearErrors(AIFunction inner) : DelegatingAIFunction(inner)
    {
        protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            try
            {
                return await base.InvokeCoreAsync(arguments, cancellationToken);
            }
            catch (Exception e) when (e is ArgumentException or UnauthorizedAccessException or FileNotFoundException
                                           or DirectoryNotFoundException or InvalidOperationException or NotSupportedException)
            {
                throw new McpException(e.Message, e);
            }
        }
    }
}
