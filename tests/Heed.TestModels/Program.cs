using Heed.TestModels;

// Heed.TestModels OUT.gguf [SEED]: the tiny random-weight llama the tests use.
// Heed.TestModels --llama-1b OUT.gguf [SEED]: a 1B-class random-weight llama (f16, ~2.2 GB) for speed measurements.
bool oneB = args.Length > 0 && args[0] == "--llama-1b";
string[] rest = oneB ? args[1..] : args;
if (rest.Length is < 1 or > 2 || (rest.Length == 2 && !int.TryParse(rest[1], out _)))
{
    Console.Error.WriteLine("usage: Heed.TestModels [--llama-1b] OUT.gguf [SEED]");
    return 2;
}
int seed = rest.Length == 2 ? int.Parse(rest[1]) : 1234;
if (oneB)
{
    var clock = System.Diagnostics.Stopwatch.StartNew();
    RandomLlama.Write(rest[0], RandomLlama.OneB, (ulong)seed);
    RandomLlama.Shape s = RandomLlama.OneB;
    Console.WriteLine($"wrote {rest[0]} ({new FileInfo(rest[0]).Length:N0} bytes) in {clock.Elapsed.TotalSeconds:F1} s: random-weight llama, " +
                      $"{s.Layers} layers, d_model {s.Embedding}, {s.Heads}/{s.KvHeads} heads of {s.HeadSize}, FFN {s.FeedForward}, vocabulary {s.Vocabulary}, f16");
    return 0;
}
TinyLlama.Write(rest[0], seed);
Console.WriteLine($"wrote {rest[0]} ({new FileInfo(rest[0]).Length} bytes): tiny random-weight llama, {TinyLlama.Layers} layers, {TinyLlama.Heads}/{TinyLlama.KvHeads} heads");
return 0;
