using System.Runtime.InteropServices;

namespace Heed.Interop.Native;

#pragma warning disable CS1591 // each declaration is the heed.h function or field of the same name

/// <summary>heed_dtype (heed/tensor.h).</summary>
public enum HeedDType
{
    F32 = 0,
    F16 = 1,
    BF16 = 2,
    I8 = 3,
    U4 = 4,
    U2 = 5,
    I32 = 6,
    U8 = 7,
}

/// <summary>heed_tensor (heed/tensor.h): data, dtype, ndim, shape[4], strides[4] in elements (all zero: contiguous).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct HeedTensor { public void* data; public int dtype; public int ndim; public fixed long shape[4]; public fixed long strides[4]; }

/// <summary>libheed's attention kernels (heed/attention.h) and device memory helpers (heed/tensor.h).</summary>
public static unsafe partial class HeedAttentionNative
{
    private const string Lib = NativeLibraryNames.Heed;

    static HeedAttentionNative() => NativeLibraryResolver.Install();

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_attention_aggregate(HeedTensor* q, HeedTensor* qPos, HeedTensor* k, HeedTensor* kPos,
                                                              float scale, int causal, HeedTensor* output, HeedTensor* outputPerHead);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_flash_attention_forward(HeedTensor* q, HeedTensor* k, HeedTensor* v, float scale, int causal,
                                                                  HeedTensor* o, HeedTensor* lse);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_block_sparse_attention_forward(HeedTensor* q, HeedTensor* k, HeedTensor* v, HeedTensor* mask,
                                                                         int block, float scale, int causal, HeedTensor* o, HeedTensor* lse);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_block_mask_estimate(HeedTensor* q, HeedTensor* k, int block, float coverage, float scale,
                                                              int causal, HeedTensor* mask);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_attention_cpu_config(int reference, int threads);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_memory_kind_of(void* ptr, out int kind, out int device);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_cuda_malloc(int device, nuint bytes, out IntPtr ptr);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_cuda_free(IntPtr ptr);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_cuda_memcpy(void* dst, void* src, nuint bytes, int kind);

    [LibraryImport(Lib)]
    public static partial HeedStatus heed_cuda_synchronize(int device);
}
#pragma warning restore CS1591
