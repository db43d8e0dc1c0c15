using Heed.AI;
using Heed.Ranking;
using Heed.Rag;
using Heed.Retrieval;
using LLama;
using LLama.Common;

namespace Heed.LLamaSharp.Tests;

/// <summary>The README's "With LLamaSharp" sample: the lines between the markers are quoted there verbatim.</summary>
internal static class ReadmeSample
{
    public static async Task<(IReadOnlyList<RankedDocument> Ranked, AnswerResult Answer, RagPipelineOptions Rag)> RunAsync(
        string modelPath, string[] documents, string longFile)
    {
        // README begin
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(modelPath));
        var engine = new LLamaSharpEngine(weights);  // Heed's retrieval over LLamaSharp's model

        using var reranker = new InContextReranker(engine);
        var ranked = await reranker.RerankAsync("Which command runs the tests of a Go package?", documents);

        using var retriever = new InfiniteRetriever(engine);
        var answer = await retriever.AnswerFileAsync("What is the pass key?", longFile);

        using var chat = new LlamaChatClient(engine, options: new() { FallbackTemplate = "chatml" });  // decodes on LLamaSharp's context
        var rag = new RagPipelineOptions { Reranker = reranker, ChatClient = chat };  // all of RAG on LLamaSharp's model
        // README end
        return (ranked, answer, rag);
    }
}
