using System.CommandLine;
using Heed.Attention;
using Heed.Llama;
using Spectre.Console;

namespace Heed.Cli.Commands;

/// <summary>
/// `heed doctor --model M`: checks this installation end to end and exits non-zero on a failure:
/// the native libraries and their struct layouts, the devices, greedy generation on the GPU
/// against the CPU token for token, and attention capture against llama.cpp's own softmax (with
/// the model on the CPU and, when there is a GPU, offloaded, aggregating on both).
/// </summary>
internal static class DoctorCommand
{
    private const string Prompt =
        "The pass key is 48213. Remember it. The grass is green. The sky is blue. What is the pass key? The pass key is";

    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        var command = new Command("doctor", "Check the native libraries, the GPU, and attention capture against llama.cpp") { model };
        command.SetAction((parse, ct) => CliErrors.RunAsync(async () =>
        {
            FileInfo file = parse.GetValue(model)!;
            var table = new Table().AddColumn("check").AddColumn("result").AddColumn("detail");
            bool ok = true;
            void Row(string check, bool pass, string detail)
            {
                ok &= pass;
                table.AddRow(check, pass ? "[green]pass[/]" : "[red]FAIL[/]", Markup.Escape(detail));
            }

            LlamaBackend.EnsureInitialized();
            Row("native libraries and llama.cpp struct layouts", true, $"libheed {LlamaBackend.HeedVersion}, llama.cpp {LlamaBackend.LlamaRelease}");
            bool gpu = LlamaBackend.HasGpu;
            Row("devices", true, string.Join(", ", LlamaBackend.Devices.Select(d => $"{d.Name} ({d.Description})")));

            using LlamaModel cpuModel = await LlamaModel.LoadAsync(file.FullName, new LlamaModelOptions { GpuLayers = 0 }, null, ct);
            int[] prompt = cpuModel.Tokenizer.Tokenize(Prompt);
            List<int> cpuTokens = await Greedy(cpuModel, prompt, ct);
            CheckCapture(cpuModel, AttentionDevice.Cpu, "capture vs llama.cpp softmax, model on CPU", Row);

            if (gpu)
            {
                using LlamaModel gpuModel = await LlamaModel.LoadAsync(file.FullName, new LlamaModelOptions { GpuLayers = -1 }, null, ct);
                List<int> gpuTokens = await Greedy(gpuModel, prompt, ct);
                int same = cpuTokens.Zip(gpuTokens).TakeWhile(p => p.First == p.Second).Count();
                Row("greedy generation, all layers on the GPU vs CPU", cpuTokens.SequenceEqual(gpuTokens),
                    $"{same}/{cpuTokens.Count} tokens identical: {cpuModel.Tokenizer.Detokenize([.. gpuTokens]).Trim()}");
                CheckCapture(gpuModel, AttentionDevice.Cpu, "capture from device memory vs llama.cpp softmax (CPU kernel)", Row);
                CheckCapture(gpuModel, AttentionDevice.Cuda, "capture from device memory vs llama.cpp softmax (CUDA kernel)", Row);
            }
            else
            {
                table.AddRow("GPU checks", "[grey]not run[/]", "no GPU backend found");
            }
            AnsiConsole.Write(table);
            return ok ? 0 : 1;
        }));
        return command;
    }

    private static async Task<List<int>> Greedy(LlamaModel model, int[] prompt, CancellationToken ct)
    {
        using LlamaContext context = model.CreateContext(new LlamaContextOptions { ContextSize = 512, BatchSize = 512, MicroBatchSize = 512 });
        var tokens = new List<int>();
        await foreach (int t in context.GenerateTokensAsync(prompt, new GenerationOptions { MaxTokens = 24 }, ct))
        {
            tokens.Add(t);
        }
        return tokens;
    }

    // The fused aggregation over captured rows against llama.cpp's kq_soft_max, every layer,
    // micro-batches smaller than the prompt, the query decoded on the reused cache.
    private static void CheckCapture(LlamaModel model, AttentionDevice device, string name, Action<string, bool, string> row)
    {
        using var capture = new AttentionCapture(model, null,
            new LlamaContextOptions
            {
                ContextSize = 512, BatchSize = 128, MicroBatchSize = 16, FlashAttention = FlashAttentionMode.Disabled,
                KeyCacheType = KvCacheType.F32, ValueCacheType = KvCacheType.F32,
            },
            new AttentionCaptureOptions { ReferenceSoftmax = true });
        int[] tokens = model.Tokenizer.Tokenize(Prompt);
        int split = tokens.Length * 2 / 3;
        capture.Evaluate(tokens.AsSpan(0, split), false, true);
        capture.Evaluate(tokens.AsSpan(split), true, true);
        double worst = 0;
        foreach (int layer in capture.Layers)
        {
            float[] fused = capture.Aggregate(layer, split, -1, device);
            double[] reference = capture.ReferenceMass(layer);
            double diff = 0, norm = 0;
            for (int j = 0; j < reference.Length; j++)
            {
                double ours = j < fused.Length ? fused[j] : 0;
                diff += (ours - reference[j]) * (ours - reference[j]);
                norm += reference[j] * reference[j];
            }
            worst = Math.Max(worst, Math.Sqrt(diff / norm));
        }
        row(name, worst < 1e-3, $"worst relative error over {capture.Layers.Count} layers: {worst:E2} (limit 1e-3)");
    }
}
