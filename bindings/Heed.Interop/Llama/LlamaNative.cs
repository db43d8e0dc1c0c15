using System.Runtime.InteropServices;

namespace Heed.Interop.Llama;

#pragma warning disable CS1591 // each declaration is the llama.h function of the same name

/// <summary>libllama (llama.cpp v0.5.0) entry points the SDK uses. See llama.h for each.</summary>
public static unsafe partial class LlamaNative
{
    private const string Lib = NativeLibraryNames.Llama;

    static LlamaNative() => NativeLibraryResolver.Install();

    // backend and logging
    [LibraryImport(Lib)] public static partial void llama_backend_init();
    [LibraryImport(Lib)] public static partial void llama_backend_free();
    [LibraryImport(Lib)] public static partial IntPtr llama_print_system_info();
    [LibraryImport(Lib)] public static partial byte llama_supports_gpu_offload();
    [LibraryImport(Lib)] public static partial void llama_log_set(delegate* unmanaged[Cdecl]<int, byte*, IntPtr, void> callback, IntPtr userData);

    // defaults
    [LibraryImport(Lib)] public static partial LlamaModelParams llama_model_default_params();
    [LibraryImport(Lib)] public static partial LlamaContextParams llama_context_default_params();
    [LibraryImport(Lib)] public static partial LlamaSamplerChainParams llama_sampler_chain_default_params();

    // model
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial SafeLlamaModelHandle llama_model_load_from_file(string path, LlamaModelParams parameters);
    [LibraryImport(Lib)] public static partial void llama_model_free(IntPtr model);
    [LibraryImport(Lib)] public static partial IntPtr llama_model_get_vocab(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_n_ctx_train(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_n_embd(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_n_layer(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_n_head(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_n_head_kv(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_rope_type(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial ulong llama_model_size(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial ulong llama_model_n_params(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_desc(SafeLlamaModelHandle model, byte* buffer, nuint size);
    [LibraryImport(Lib)] public static partial int llama_model_meta_count(SafeLlamaModelHandle model);
    [LibraryImport(Lib)] public static partial int llama_model_meta_key_by_index(SafeLlamaModelHandle model, int i, byte* buffer, nuint size);
    [LibraryImport(Lib)] public static partial int llama_model_meta_val_str_by_index(SafeLlamaModelHandle model, int i, byte* buffer, nuint size);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int llama_model_meta_val_str(SafeLlamaModelHandle model, string key, byte* buffer, nuint size);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr llama_model_chat_template(SafeLlamaModelHandle model, string? name);

    // vocabulary (the vocab pointer lives as long as its model)
    [LibraryImport(Lib)] public static partial int llama_vocab_n_tokens(IntPtr vocab);
    [LibraryImport(Lib)] public static partial int llama_vocab_type(IntPtr vocab);
    [LibraryImport(Lib)] public static partial int llama_vocab_bos(IntPtr vocab);
    [LibraryImport(Lib)] public static partial int llama_vocab_eos(IntPtr vocab);
    [LibraryImport(Lib)] public static partial byte llama_vocab_is_eog(IntPtr vocab, int token);
    [LibraryImport(Lib)] public static partial byte llama_vocab_get_add_bos(IntPtr vocab);
    [LibraryImport(Lib)]
    public static partial int llama_tokenize(IntPtr vocab, byte* text, int textLength, int* tokens, int maxTokens,
        [MarshalAs(UnmanagedType.U1)] bool addSpecial, [MarshalAs(UnmanagedType.U1)] bool parseSpecial);
    [LibraryImport(Lib)]
    public static partial int llama_token_to_piece(IntPtr vocab, int token, byte* buffer, int length, int lstrip,
        [MarshalAs(UnmanagedType.U1)] bool special);
    [LibraryImport(Lib)]
    public static partial int llama_detokenize(IntPtr vocab, int* tokens, int count, byte* text, int maxLength,
        [MarshalAs(UnmanagedType.U1)] bool removeSpecial, [MarshalAs(UnmanagedType.U1)] bool unparseSpecial);
    [LibraryImport(Lib)]
    public static partial int llama_chat_apply_template(byte* template, LlamaChatMessage* messages, nuint count,
        [MarshalAs(UnmanagedType.U1)] bool addAssistant, byte* buffer, int length);

    // context
    [LibraryImport(Lib)] public static partial SafeLlamaContextHandle llama_init_from_model(SafeLlamaModelHandle model, LlamaContextParams parameters);
    [LibraryImport(Lib)] public static partial void llama_free(IntPtr context);
    [LibraryImport(Lib)] public static partial uint llama_n_ctx(SafeLlamaContextHandle context);
    [LibraryImport(Lib)] public static partial uint llama_n_batch(SafeLlamaContextHandle context);
    [LibraryImport(Lib)] public static partial uint llama_n_ubatch(SafeLlamaContextHandle context);
    [LibraryImport(Lib)] public static partial int llama_decode(SafeLlamaContextHandle context, LlamaBatch batch);
    [LibraryImport(Lib)] public static partial void llama_synchronize(SafeLlamaContextHandle context);
    [LibraryImport(Lib)] public static partial float* llama_get_logits_ith(SafeLlamaContextHandle context, int i);
    [LibraryImport(Lib)] public static partial float* llama_get_embeddings_ith(SafeLlamaContextHandle context, int i);
    [LibraryImport(Lib)] public static partial float* llama_get_embeddings_seq(SafeLlamaContextHandle context, int sequence);
    [LibraryImport(Lib)] public static partial int llama_pooling_type(SafeLlamaContextHandle context);
    [LibraryImport(Lib)] public static partial LlamaPerfContextData llama_perf_context(SafeLlamaContextHandle context);

    // memory (KV cache)
    [LibraryImport(Lib)] public static partial IntPtr llama_get_memory(SafeLlamaContextHandle context);
    [LibraryImport(Lib)] public static partial void llama_memory_clear(IntPtr memory, [MarshalAs(UnmanagedType.U1)] bool data);
    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool llama_memory_seq_rm(IntPtr memory, int sequence, int p0, int p1);
    [LibraryImport(Lib)] public static partial void llama_memory_seq_cp(IntPtr memory, int source, int destination, int p0, int p1);
    [LibraryImport(Lib)] public static partial void llama_memory_seq_keep(IntPtr memory, int sequence);
    [LibraryImport(Lib)] public static partial void llama_memory_seq_add(IntPtr memory, int sequence, int p0, int p1, int delta);
    [LibraryImport(Lib)] public static partial int llama_memory_seq_pos_min(IntPtr memory, int sequence);
    [LibraryImport(Lib)] public static partial int llama_memory_seq_pos_max(IntPtr memory, int sequence);

    // state
    [LibraryImport(Lib)] public static partial nuint llama_state_get_size(SafeLlamaContextHandle context);
    [LibraryImport(Lib)] public static partial nuint llama_state_get_data(SafeLlamaContextHandle context, byte* destination, nuint size);
    [LibraryImport(Lib)] public static partial nuint llama_state_set_data(SafeLlamaContextHandle context, byte* source, nuint size);
    [LibraryImport(Lib)] public static partial nuint llama_state_seq_get_size(SafeLlamaContextHandle context, int sequence);
    [LibraryImport(Lib)] public static partial nuint llama_state_seq_get_data(SafeLlamaContextHandle context, byte* destination, nuint size, int sequence);
    [LibraryImport(Lib)] public static partial nuint llama_state_seq_set_data(SafeLlamaContextHandle context, byte* source, nuint size, int destinationSequence);

    // sampling
    [LibraryImport(Lib)] public static partial SafeLlamaSamplerHandle llama_sampler_chain_init(LlamaSamplerChainParams parameters);
    [LibraryImport(Lib)] public static partial void llama_sampler_chain_add(SafeLlamaSamplerHandle chain, IntPtr sampler);
    [LibraryImport(Lib)] public static partial void llama_sampler_free(IntPtr sampler);
    [LibraryImport(Lib)] public static partial int llama_sampler_sample(SafeLlamaSamplerHandle sampler, SafeLlamaContextHandle context, int index);
    [LibraryImport(Lib)] public static partial void llama_sampler_accept(SafeLlamaSamplerHandle sampler, int token);
    [LibraryImport(Lib)] public static partial void llama_sampler_reset(SafeLlamaSamplerHandle sampler);
    [LibraryImport(Lib)] public static partial IntPtr llama_sampler_init_greedy();
    [LibraryImport(Lib)] public static partial IntPtr llama_sampler_init_dist(uint seed);
    [LibraryImport(Lib)] public static partial IntPtr llama_sampler_init_top_k(int k);
    [LibraryImport(Lib)] public static partial IntPtr llama_sampler_init_top_p(float p, nuint minKeep);
    [LibraryImport(Lib)] public static partial IntPtr llama_sampler_init_min_p(float p, nuint minKeep);
    [LibraryImport(Lib)] public static partial IntPtr llama_sampler_init_temp(float temperature);
    [LibraryImport(Lib)] public static partial IntPtr llama_sampler_init_penalties(int vocabSize, int lastN, float repeat, float frequency, float presence);
}
#pragma warning restore CS1591
