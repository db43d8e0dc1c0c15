using Heed.TestModels;

if (args.Length is < 1 or > 2 || (args.Length == 2 && !int.TryParse(args[1], out _)))
{
    Console.Error.WriteLine("usage: Heed.TestModels OUT.gguf [SEED]");
    return 2;
}
TinyLlama.Write(args[0], args.Length == 2 ? int.Parse(args[1]) : 1234);
Console.WriteLine($"wrote {args[0]} ({new FileInfo(args[0]).Length} bytes): tiny random-weight llama, {TinyLlama.Layers} layers, {TinyLlama.Heads}/{TinyLlama.KvHeads} heads");
return 0;
