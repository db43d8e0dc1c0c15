using System.Runtime.InteropServices;

namespace Heed.Interop.Native;

#pragma warning disable CS1591 // each declaration is the heed.h function or field of the same name

/// <summary>heed_quant_kv (heed/kv_quant.h): bits, group size and the ten tensors of a quantized K/V cache.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct HeedQuantKv
{
    public int bits;
    public int group_size;
    public HeedTensor k_codes;
    public HeedTensor k_scale;
    public HeedTensor k_zero;
    public HeedTensor v_codes;
    public HeedTensor v_scale;
    public HeedTensor v_zero;
    public HeedTensor salient_slot;
    public HeedTensor salient_count;
    public HeedTensor salient_k;
    public HeedTensor salient_v;

    /// <summary>HEED_QUANT_KV_TENSORS: the number of tensors, in declaration order.</summary>
    public const int TensorCount = 10;
}

/// <summary>libheed's linear attention and KV quantization kernels (heed/linear_attention.h, heed/kv_quant.h).</summary>
public static unsafe partial class HeedLinearKvNative
{
    private const string Lib = NativeLibraryNames.Heed;

    static HeedLinearKvNative() => NativeLibraryResolver.Install();

    /// <summary>HEED_LINEAR_CHUNK.</summary>
    public const int LinearChunk = 64;

    /// <summary>HEED_LINEAR_DEFAULT_EPSILON.</summary>
    public const float LinearDefaultEpsilon = 1e-6f;

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_linear_attention_causal(HeedTensor* q, HeedTensor* k, HeedTensor* v, HeedTensor* decay,
                                                                  HeedTensor* stateIn, HeedTensor* zIn, int featureMap, int normalize,
                                                                  float epsilon, HeedTensor* output, HeedTensor* stateOut, HeedTensor* zOut);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_quant_kv_sizes(long batch, long kvHeads, long tokens, long headDim, long valueDim, int bits,
                                                         int groupSize, long salientCapacity, HeedQuantKv* cache, nuint* bytes,
                                                         nuint* totalBytes);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_kv_quantize(HeedTensor* k, HeedTensor* v, HeedTensor* salientMask, HeedQuantKv* cache);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_kv_dequantize(HeedQuantKv* cache, HeedTensor* kOut, HeedTensor* vOut);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_quant_decode_attention(HeedTensor* q, HeedQuantKv* cache, int causal, float scale,
                                                                 int numSplits, HeedTensor* output);
}
#pragma warning restore CS1591
