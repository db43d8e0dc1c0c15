// Heed inside Semantic Kernel.
//   dotnet run -- path/to/model.gguf
await Heed.Examples.SemanticKernel.Example.RunAsync(args.Length > 0 ? args[0] : "models/heed-tiny.gguf", Console.Out);
