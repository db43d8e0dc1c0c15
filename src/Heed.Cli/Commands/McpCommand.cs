using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Heed.AI;
using Heed.Hosting;
using Heed.Llama;
using Heed.Storage;
using Heed.Storage.Postgres;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Heed.Cli.Commands;

/// <summary>
/// `heed mcp --model M`: serves Heed's tools (rerank_documents, search_knowledge_base, ask_long_document,
/// ingest_documents) to MCP clients over stdio, or with `--http PORT` over streamable HTTP to many clients at once,
/// each request carrying a bearer key (from HEED_MCP_KEY or --key-file, never the command line). Standard output
/// carries the stdio protocol only; logs go to standard error.
/// </summary>
internal static class McpCommand
{
    /// <summary>The environment variable that holds the HTTP key.</summary>
    public const string KeyVariable = "HEED_MCP_KEY";

    private const int MinimumKeyLength = 16;

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
        var postgres = new Option<string?>("--postgres")
        {
            Description = "Keep the knowledge base in PostgreSQL (with pgvector): an Npgsql connection string (the password can come from ~/.pgpass)",
        };
        var contextSize = new Option<int>("--context") { Description = "Context size in tokens (0: the model's)", DefaultValueFactory = _ => 2048 };
        var poolSize = new Option<int>("--pool") { Description = "Requests served at once", DefaultValueFactory = _ => 2 };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "llama.cpp template name for models without a usable one (e.g. chatml)" };
        var http = new Option<int?>("--http")
        {
            Description = $"Serve over streamable HTTP on this port (0: any free one) at /mcp instead of stdio; requests need the key in {KeyVariable} or --key-file",
        };
        var listen = new Option<string>("--listen") { Description = "The address --http listens on", DefaultValueFactory = _ => "127.0.0.1" };
        var keyFile = new Option<FileInfo?>("--key-file") { Description = $"A file holding the HTTP bearer key (instead of {KeyVariable})" };
        var command = new Command("mcp", "Serve Heed's tools over MCP (stdio, or HTTP with a key)")
        {
            model, allowedRoots, index, postgres, contextSize, poolSize, chatTemplate, http, listen, keyFile, gpuLayers, verbose,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var settings = new Settings(parse.GetValue(model)!, parse.GetValue(allowedRoots) ?? [], parse.GetValue(index), parse.GetValue(postgres),
                parse.GetValue(contextSize), parse.GetValue(poolSize), parse.GetValue(chatTemplate), parse.GetValue(gpuLayers), parse.GetValue(verbose));
            return parse.GetValue(http) is int port
                ? RunHttpAsync(settings, port, parse.GetValue(listen)!, parse.GetValue(keyFile), cancellationToken)
                : RunStdioAsync(settings, cancellationToken);
        });
        return command;
    }

    private static Task<int> RunStdioAsync(Settings settings, CancellationToken cancellationToken) => RunAsync(async () =>
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        ConfigureLogging(builder.Logging, settings.Verbose);
        AddTools(builder.Services, settings).WithStdioServerTransport();
        using IHost host = builder.Build();
        SetLlamaLogger(host.Services, settings.Verbose);
        await host.RunAsync(cancellationToken);
        return 0;
    });

    private static Task<int> RunHttpAsync(Settings settings, int port, string listen, FileInfo? keyFile, CancellationToken cancellationToken) =>
        RunAsync(async () =>
        {
            byte[] keyHash = SHA256.HashData(Encoding.UTF8.GetBytes(ReadKey(keyFile)));
            if (port is < 0 or > 65535)
            {
                throw new ArgumentException($"--http {port} is not a port; give 1 to 65535, or 0 for any free one.");
            }
            if (!IPAddress.TryParse(listen, out IPAddress? address))
            {
                throw new ArgumentException($"--listen {listen} is not an IP address; give e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).");
            }
            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
            ConfigureLogging(builder.Logging, settings.Verbose);
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address, port));
            AddTools(builder.Services, settings).WithHttpTransport(o => o.Stateless = true);
            await using WebApplication app = builder.Build();
            SetLlamaLogger(app.Services, settings.Verbose);
            // every request must carry the key; a refused one reaches no tool
            app.Use(async (context, next) =>
            {
                if (!HasKey(context.Request, keyHash))
                {
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    return;
                }
                await next(context);
            });
            app.MapMcp("/mcp");
            await app.StartAsync(cancellationToken);
            foreach (string url in app.Urls) // the bound addresses, with the port chosen for --http 0
            {
                await Console.Error.WriteLineAsync($"heed mcp: serving {url}/mcp");
            }
            await app.WaitForShutdownAsync(cancellationToken);
            return 0;
        });

    /// <summary>The key from --key-file or the environment; refuses short ones (a key must not be guessable).</summary>
    private static string ReadKey(FileInfo? keyFile)
    {
        string? key = keyFile is not null
            ? (keyFile.Exists ? File.ReadAllText(keyFile.FullName).Trim() : throw new FileNotFoundException($"The key file {keyFile.FullName} does not exist.", keyFile.FullName))
            : Environment.GetEnvironmentVariable(KeyVariable)?.Trim();
        if (string.IsNullOrEmpty(key))
        {
            throw new ArgumentException($"--http needs a key that clients send as \"Authorization: Bearer <key>\": set {KeyVariable} or give --key-file <file>.");
        }
        if (key.Length < MinimumKeyLength)
        {
            throw new ArgumentException($"The HTTP key is {key.Length} characters; use at least {MinimumKeyLength} random ones (e.g. openssl rand -hex 32).");
        }
        return key;
    }

    private static bool HasKey(HttpRequest request, byte[] keyHash)
    {
        string header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        // compare hashes in constant time: neither the length nor a prefix of the key leaks through timing
        byte[] given = SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, keyHash);
    }

    private static IMcpServerBuilder AddTools(IServiceCollection services, Settings settings)
    {
        services.AddHeed(o =>
        {
            o.ModelPath = settings.Model.FullName;
            o.GpuLayers = settings.GpuLayers;
            o.ContextSize = settings.ContextSize;
            o.PoolSize = settings.PoolSize;
            o.FallbackChatTemplate = settings.ChatTemplate;
            o.IndexPath = settings.Index?.FullName;
            o.AllowedRoots = settings.AllowedRoots.Select(d => d.FullName).ToList();
            if (settings.Postgres is not null)
            {
                o.UsePostgres(settings.Postgres);
            }
        });
        IMcpServerBuilder mcp = services.AddMcpServer(o => o.ServerInfo = new Implementation
        {
            Name = "heed",
            Version = typeof(McpCommand).Assembly.GetName().Version?.ToString() ?? "0",
        });
        foreach (string name in new[] { "rerank_documents", "search_knowledge_base", "ask_long_document", "ingest_documents" })
        {
            services.AddSingleton(sp => McpServerTool.Create(
                new ClearErrors(sp.GetRequiredService<HeedTools>().Functions.Single(f => f.Name == name))));
        }
        return mcp;
    }

    // stdout is the stdio MCP channel: every log line goes to stderr
    private static void ConfigureLogging(ILoggingBuilder logging, bool verbose) =>
        logging.ClearProviders().AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning);

    private static void SetLlamaLogger(IServiceProvider services, bool verbose)
    {
        if (verbose)
        {
            LlamaBackend.Logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("llama.cpp");
        }
    }

    private static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (e is Microsoft.Extensions.Options.OptionsValidationException or HeedModelFormatException or HeedNativeException
                                       or DllNotFoundException or ArgumentException or FileNotFoundException or HeedStoreException or IOException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
    }

    private sealed record Settings(FileInfo Model, DirectoryInfo[] AllowedRoots, FileInfo? Index, string? Postgres, int ContextSize, int PoolSize,
        string? ChatTemplate, int GpuLayers, bool Verbose);

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
            catch (Exception e) when (e is ArgumentException or UnauthorizedAccessException or FileNotFoundException or DirectoryNotFoundException
                                           or InvalidOperationException or NotSupportedException or HeedStoreException)
            {
                throw new McpException(e.Message, e);
            }
        }
    }
}
