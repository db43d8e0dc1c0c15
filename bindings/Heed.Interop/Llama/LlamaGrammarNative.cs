using System.Runtime.InteropServices;

namespace Heed.Interop.Llama;

#pragma warning disable CS1591 // names and signatures mirror llama.h
/// <summary>llama.cpp's grammar sampler (GBNF), added to a sampler chain like any other sampler.</summary>
public static unsafe partial class LlamaGrammarNative
{
    static LlamaGrammarNative() => NativeLibraryResolver.Install();

    /// <summary>Returns null when llama.cpp cannot parse <paramref name="grammar"/> (it logs why).</summary>
    [LibraryImport(NativeLibraryNames.Llama, StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr llama_sampler_init_grammar(IntPtr vocab, string grammar, string grammarRoot);
}
#pragma warning restore CS1591
