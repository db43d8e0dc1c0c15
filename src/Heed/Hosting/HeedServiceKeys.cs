namespace Heed.Hosting;

/// <summary>Keys of the keyed services AddHeed registers.</summary>
public static class HeedServiceKeys
{
    /// <summary>The <see cref="LlamaInference"/> (context pool) of chat requests.</summary>
    public const string Chat = "heed.chat";

    /// <summary>The <see cref="LlamaInference"/> (context pool) of embedding requests.</summary>
    public const string Embedding = "heed.embedding";
}
