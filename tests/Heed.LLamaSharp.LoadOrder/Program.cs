// Greedy tokens from Heed's runtime and from LLamaSharp's, loaded in the order the first
// argument names, in one process:
//   heed | llamasharp               one runtime alone
//   heed-first | llamasharp-first   both: the first loads and generates, then the second, then the first again
// Prints one line per generation, "<runtime>: <token ids>", for the test to compare across processes.
using Heed.Llama;
using LLama;
using LLama.Common;
using LLama.Native;

if (args.Length != 2 || !File.Exists(args[1]))
{
    Console.Error.WriteLine("usage: Heed.LLamaSharp.LoadOrder heed|llamasharp|heed-first|llamasharp-first <model.gguf>");
    return 2;
}
const string Prompt = "The package manager keeps track of installed files. The manual page";
const int Tokens = 24;
string modelPath = args[1];

string[] order = args[0] switch
{
    "heed" => ["heed"],
    "llamasharp" => ["llamasharp"],
    "heed-first" => ["heed", "llamasharp", "heed"],
    "llamasharp-first" => ["llamasharp", "heed", "llamasharp"],
    _ => [],
};
if (order.Length == 0)
{
    Console.Error.WriteLine($"unknown order '{args[0]}'");
    return 2;
}

LlamaModel? heedModel = null;
LLamaWeights? sharpWeights = null;
ModelParams sharpParameters = new(modelPath) { ContextSize = 256, Threads = 2, BatchThreads = 2, GpuLayerCount = 0 };
foreach (string runtime in order)
{
    IReadOnlyList<int> tokens;
    if (runtime == "heed")
    {
        heedModel ??= LlamaModel.Load(modelPath);
        tokens = await HeedGreedy(heedModel);
    }
    else
    {
        sharpWeights ??= LLamaWeights.LoadFromFile(sharpParameters);
        tokens = LLamaSharpGreedy(sharpWeights, sharpParameters);
    }
    Console.WriteLine($"{runtime}: {string.Join(' ', tokens)}");
}
heedModel?.Dispose();
sharpWeights?.Dispose();
return 0;

static async Task<IReadOnlyList<int>> HeedGreedy(LlamaModel model)
{
    using LlamaContext context = model.CreateContext(new LlamaContextOptions { ContextSize = 256, Threads = 2 });
    var tokens = new List<int>();
    var greedy = new GenerationOptions { MaxTokens = Tokens, Temperature = 0 };
    await foreach (int token in context.GenerateTokensAsync(model.Tokenizer.Tokenize(Prompt), greedy))
    {
        tokens.Add(token);
    }
    return tokens;
}

// Plain LLamaSharp, as its users write it: decode the prompt, then one greedy token at a time.
static IReadOnlyList<int> LLamaSharpGreedy(LLamaWeights weights, ModelParams parameters)
{
    using LLamaContext context = weights.CreateContext(parameters);
    using SafeLLamaSamplerChainHandle sampler = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
    sampler.AddGreedySampler();
    LLamaToken[] prompt = context.Tokenize(Prompt, true, false);
    var batch = new LLamaBatch();
    batch.AddRange(prompt, 0, LLamaSeqId.Zero, true);
    int position = prompt.Length;
    var tokens = new List<int>();
    for (int i = 0; i < Tokens; i++)
    {
        if (context.NativeHandle.Decode(batch) != DecodeResult.Ok)
        {
            throw new InvalidOperationException("LLamaSharp could not decode");
        }
        LLamaToken token = sampler.Sample(context.NativeHandle, -1);
        if (token.IsEndOfGeneration(weights.Vocab))
        {
            break;
        }
        tokens.Add((int)token);
        batch.Clear();
        batch.Add(token, position++, LLamaSeqId.Zero, true);
    }
    return tokens;
}
