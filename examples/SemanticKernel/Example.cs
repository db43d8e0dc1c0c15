using Heed.Hosting;
using Heed.SemanticKernel;
using Microsoft.SemanticKernel;

namespace Heed.Examples.SemanticKernel;

/// <summary>Heed's retrieval tools as a kernel plugin, and the local model as the kernel's chat service.</summary>
public static class Example
{
    /// <summary>Ranks two documents by calling a tool by name, then lets the model choose tools for a prompt.</summary>
    public static async Task RunAsync(string modelPath, TextWriter output)
    {
        IKernelBuilder builder = Kernel.CreateBuilder();
        builder.Services.AddHeed(o => { o.ModelPath = modelPath; o.FallbackChatTemplate = "chatml"; });
        builder.AddHeedChatCompletion(); // the local model answers, and calls the kernel's functions
        builder.Plugins.AddHeed();       // rerank_documents, search_knowledge_base, ask_long_document, ingest_documents
        Kernel kernel = builder.Build();

        FunctionResult ranked = await kernel.InvokeAsync("heed", "rerank_documents", new KernelArguments
        {
            ["query"] = "What is the pass key?",
            ["documents"] = new[] { "The fox sleeps in the barn.", "The pass key is 4321." },
        });
        output.WriteLine($"ranked: {ranked}");

        var auto = new PromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() };
        FunctionResult answer = await kernel.InvokePromptAsync("Which of these gives the pass key: 'The pass key is 4321.' or 'The fox sleeps.'?", new(auto));
        output.WriteLine($"answer: {answer}");
    }
}
