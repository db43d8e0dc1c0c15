using Heed.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace Heed.SemanticKernel;

/// <summary>
/// Heed's retrieval tools as one Semantic Kernel plugin: <c>rerank_documents</c>,
/// <c>search_knowledge_base</c>, <c>ask_long_document</c> and <c>ingest_documents</c>, the
/// <see cref="HeedTools"/> functions under their own names.
/// </summary>
public static class HeedKernelPlugin
{
    /// <summary>The plugin's name unless another is given; SK calls the functions <c>heed-rerank_documents</c> and so on.</summary>
    public const string DefaultName = "heed";

    private const string Description = "Retrieval with a local model's attention: re-rank documents, search a knowledge base, answer from long documents, ingest folders.";

    /// <summary>A plugin holding the four tools of <paramref name="tools"/>.</summary>
    /// <param name="tools">The tools (from DI: <c>services.AddHeed(...)</c>, or built by hand).</param>
    /// <param name="pluginName">The plugin's name.</param>
    public static KernelPlugin Create(HeedTools tools, string pluginName = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentException.ThrowIfNullOrWhiteSpace(pluginName);
        return KernelPluginFactory.CreateFromFunctions(pluginName, Description, tools.Functions.Select(f => f.AsKernelFunction()));
    }

    /// <summary>Adds the plugin over <paramref name="tools"/> to a kernel's plugins.</summary>
    /// <returns>The plugin added.</returns>
    public static KernelPlugin AddHeed(this ICollection<KernelPlugin> plugins, HeedTools tools, string pluginName = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        KernelPlugin plugin = Create(tools, pluginName);
        plugins.Add(plugin);
        return plugin;
    }

    /// <summary>
    /// Adds the plugin to a kernel being built, over the <see cref="HeedTools"/> registered in its
    /// services (<c>builder.Services.AddHeed(...)</c>) when the kernel is built.
    /// </summary>
    public static IKernelBuilderPlugins AddHeed(this IKernelBuilderPlugins plugins, string pluginName = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        ArgumentException.ThrowIfNullOrWhiteSpace(pluginName);
        plugins.Services.AddSingleton(services => Create(services.GetRequiredService<HeedTools>(), pluginName));
        return plugins;
    }

    /// <summary>Adds the plugin over <paramref name="tools"/> to a kernel being built.</summary>
    public static IKernelBuilderPlugins AddHeed(this IKernelBuilderPlugins plugins, HeedTools tools, string pluginName = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(plugins);
        plugins.Services.AddSingleton(Create(tools, pluginName));
        return plugins;
    }

    /// <summary>
    /// Makes Heed's local model the kernel's chat completion service: the <see cref="IChatClient"/>
    /// that <c>AddHeed</c> registers (or the one <paramref name="chatClient"/> makes), through SK's
    /// M.E.AI bridge with SK's function invocation, so <c>FunctionChoiceBehavior.Auto()</c> and
    /// <c>Required()</c> run the kernel's functions.
    /// </summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="chatClient">Makes the chat client from the kernel's services; null for the registered IChatClient.</param>
    public static IKernelBuilder AddHeedChatCompletion(this IKernelBuilder builder, Func<IServiceProvider, IChatClient>? chatClient = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IChatCompletionService>(services =>
            (chatClient?.Invoke(services) ?? services.GetRequiredService<IChatClient>())
                .AsBuilder()
                .UseKernelFunctionInvocation(services.GetService<ILoggerFactory>())
                .Build(services)
                .AsChatCompletionService(services));
        return builder;
    }
}
