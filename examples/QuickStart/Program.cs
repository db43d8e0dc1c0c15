// Heed quick start: load a GGUF model, look at it, tokenize, and stream a continuation.
//   dotnet run -- path/to/model.gguf
using Heed.Llama;

string path = args.Length > 0 ? args[0] : "models/heed-tiny.gguf";
using LlamaModel model = await LlamaModel.LoadAsync(path);
Console.WriteLine($"{model.Description}: {model.LayerCount} layers, {model.HeadCount}/{model.KvHeadCount} heads, context {model.TrainedContextLength}");

int[] tokens = model.Tokenizer.Tokenize("The pass key is 71432. Remember it.");
Console.WriteLine($"{tokens.Length} tokens: {string.Join(' ', tokens)}");

using LlamaContext context = model.CreateContext(new LlamaContextOptions { ContextSize = 512 });
Console.Write("continuation:");
await foreach (string piece in context.GenerateAsync("The pass key is 71432. Remember it. The pass key is",
                   new GenerationOptions { MaxTokens = 12 }))
{
    Console.Write(piece);
}
Console.WriteLine();
