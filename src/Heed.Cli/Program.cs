using System.CommandLine;
using Heed.Cli.Commands;

var root = new RootCommand("heed: use a local LLM's attention for retrieval")
{
    InfoCommand.Create(),
    DoctorCommand.Create(),
    GenerateCommand.Create(),
    McpCommand.Create(),
    ChatCommand.Create(),
    RerankCommand.Create(),
    AskCommand.Create(),
    PerplexityCommand.Create(),
    BenchCommand.Create(),
    RagCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
