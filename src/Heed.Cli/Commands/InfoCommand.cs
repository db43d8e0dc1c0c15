using System.CommandLine;
using Heed.Llama;
using Spectre.Console;

namespace Heed.Cli.Commands;

/// <summary>`heed info --model M`: what the model is and what it runs on.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        Option<FileInfo> model = CommonOptions.Model();
        Option<int> gpuLayers = CommonOptions.GpuLayers();
        Option<bool> verbose = CommonOptions.Verbose();
        var command = new Command("info", "Show a model's architecture and the backend in use") { model, gpuLayers, verbose };
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync(async () =>
        {
            using LlamaModel m = await ModelLoader.LoadAsync(parse.GetValue(model)!, parse.GetValue(gpuLayers),
                parse.GetValue(verbose), cancellationToken);
            IReadOnlyList<ComputeDevice> devices = LlamaBackend.Devices;
            ComputeDevice? gpu = devices.FirstOrDefault(d => d.IsGpu);
            var table = new Table().HideHeaders().AddColumn("key").AddColumn("value");
            void Row(string key, object value) => table.AddRow(key, Markup.Escape(value.ToString() ?? ""));
            Row("model", m.Path);
            Row("description", m.Description);
            Row("architecture", m.Architecture);
            Row("layers", m.LayerCount);
            Row("heads", $"{m.HeadCount} query, {m.KvHeadCount} key/value");
            Row("embedding size", m.EmbeddingSize);
            Row("trained context", m.TrainedContextLength);
            Row("vocabulary", m.VocabularySize);
            Row("parameters", $"{m.ParameterCount:N0}");
            Row("chat template", m.ChatTemplate is null ? "none" : "yes");
            Row("backend", gpu is null || parse.GetValue(gpuLayers) == 0 ? "CPU" : $"CUDA ({gpu.Name}: {gpu.Description})");
            Row("devices", string.Join(", ", devices.Select(d => d.Name)));
            Row("libheed", LlamaBackend.HeedVersion);
            Row("llama.cpp", LlamaBackend.LlamaRelease);
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
