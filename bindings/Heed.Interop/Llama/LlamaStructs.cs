using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Heed.Interop.Llama;

// Mirrors of llama.h v0.5.0 structs. Field names are the C names on purpose: the SDK checks
// each field's offset against libheed's table (compiled from the real llama.h) by name.
#pragma warning disable CS1591, IDE1006

/// <summary>llama_model_params.</summary>
[StructLayout(LayoutKind.Sequential)]
[SuppressMessage("Style", "IDE1006", Justification = "C names")]
public unsafe struct LlamaModelParams
{
    public IntPtr devices;
    public IntPtr tensor_buft_overrides;
    public int n_gpu_layers;
    public int split_mode;
    public int load_mode;
    public int lazy_mode;
    public int main_gpu;
    public float* tensor_split;
    public delegate* unmanaged[Cdecl]<float, IntPtr, byte> progress_callback;
    public IntPtr progress_callback_user_data;
    public IntPtr kv_overrides;
    public bool vocab_only;
    public bool check_tensors;
    public bool use_extra_bufts;
    public bool no_host;
    public bool no_alloc;
    public bool load_mtp;
}

/// <summary>llama_context_params.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaContextParams
{
    public uint n_ctx;
    public uint n_batch;
    public uint n_ubatch;
    public uint n_seq_max;
    public uint n_rs_seq;
    public uint n_outputs_max;
    public uint n_outputs_max_per_seq;
    public int n_threads;
    public int n_threads_batch;
    public int ctx_type;
    public int rope_scaling_type;
    public int pooling_type;
    public int attention_type;
    public int flash_attn_type;
    public float rope_freq_base;
    public float rope_freq_scale;
    public float yarn_ext_factor;
    public float yarn_attn_factor;
    public float yarn_beta_fast;
    public float yarn_beta_slow;
    public uint yarn_orig_ctx;
    public float defrag_thold;
    public IntPtr cb_eval;
    public IntPtr cb_eval_user_data;
    public int type_k;
    public int type_v;
    public delegate* unmanaged[Cdecl]<IntPtr, byte> abort_callback;
    public IntPtr abort_callback_data;
    public bool embeddings;
    public bool offload_kqv;
    public bool no_perf;
    public bool op_offload;
    public bool swa_full;
    public bool kv_unified;
    public IntPtr samplers;
    public nuint n_samplers;
    public IntPtr ctx_other;
}

/// <summary>llama_batch: arrays owned by whoever filled them.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaBatch
{
    public int n_tokens;
    public int* token;
    public float* embd;
    public int* pos;
    public int* n_seq_id;
    public int** seq_id;
    public sbyte* logits;
}

/// <summary>llama_sampler_chain_params.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct LlamaSamplerChainParams
{
    public bool no_perf;
}

/// <summary>llama_chat_message: UTF-8, NUL-terminated strings.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaChatMessage
{
    public byte* role;
    public byte* content;
}

/// <summary>llama_token_data.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct LlamaTokenData
{
    public int id;
    public float logit;
    public float p;
}

/// <summary>llama_token_data_array.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LlamaTokenDataArray
{
    public LlamaTokenData* data;
    public nuint size;
    public long selected;
    public bool sorted;
}

/// <summary>llama_perf_context_data.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct LlamaPerfContextData
{
    public double t_start_ms;
    public double t_load_ms;
    public double t_p_eval_ms;
    public double t_eval_ms;
    public int n_p_eval;
    public int n_eval;
    public int n_reused;
}

/// <summary>The structs above with their C names, for the layout check.</summary>
public static class LlamaStructs
{
    /// <summary>C struct name → the C# mirror.</summary>
    public static IReadOnlyDictionary<string, Type> ByCName { get; } = new Dictionary<string, Type>
    {
        ["llama_model_params"] = typeof(LlamaModelParams),
        ["llama_context_params"] = typeof(LlamaContextParams),
        ["llama_batch"] = typeof(LlamaBatch),
        ["llama_sampler_chain_params"] = typeof(LlamaSamplerChainParams),
        ["llama_chat_message"] = typeof(LlamaChatMessage),
        ["llama_token_data"] = typeof(LlamaTokenData),
        ["llama_token_data_array"] = typeof(LlamaTokenDataArray),
        ["llama_perf_context_data"] = typeof(LlamaPerfContextData),
    };
}
#pragma warning restore CS1591, IDE1006
