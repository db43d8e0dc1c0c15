namespace Heed.Attention;

/// <summary>Element types the attention kernels read and write (values match libheed's heed_dtype).</summary>
public enum TensorElementType
{
    /// <summary>32-bit IEEE float.</summary>
    Float32 = 0,

    /// <summary>16-bit IEEE half (<see cref="Half"/>).</summary>
    Float16 = 1,

    /// <summary>bfloat16: the upper 16 bits of a float.</summary>
    BFloat16 = 2,

    /// <summary>32-bit signed integer (token positions).</summary>
    Int32 = 6,

    /// <summary>Unsigned byte (block masks).</summary>
    UInt8 = 7,
}
