using System.Reflection;
using System.Runtime.InteropServices;
using Heed.Interop.Llama;
using Heed.Interop.Native;

namespace Heed.Llama;

/// <summary>
/// Compares the C# mirrors of llama.cpp structs with the layouts libheed was compiled with
/// (from the real llama.h). A mismatch means the native libraries and this assembly come from
/// different llama.cpp versions; calling on would corrupt memory, so it throws instead.
/// </summary>
internal static class NativeAbiCheck
{
    /// <summary>Throws <see cref="HeedNativeException"/> naming the first struct or field that differs.</summary>
    public static void Verify()
    {
        int abi = HeedNative.heed_abi_version();
        if (abi != HeedNative.AbiVersion)
        {
            throw new HeedNativeException(
                $"libheed ABI version {abi} does not match this Heed assembly ({HeedNative.AbiVersion}); " +
                "rebuild the native libraries (./build.sh) or use the matching Heed package.");
        }
        foreach ((string cName, Type type) in LlamaStructs.ByCName)
        {
            VerifyStruct(cName, type);
        }
    }

    private static void VerifyStruct(string cName, Type type)
    {
        Check(HeedNative.heed_llama_struct_size(cName, out nuint nativeSize), cName);
        int managedSize = Marshal.SizeOf(type);
        FieldInfo[] fields = type.GetFields(BindingFlags.Public | BindingFlags.Instance);
        Check(HeedNative.heed_llama_field_count(cName, out int nativeCount), cName);
        if (nativeCount != fields.Length)
        {
            throw Mismatch(cName, $"llama.h has {nativeCount} fields, the C# mirror {fields.Length}");
        }
        foreach (FieldInfo field in fields)
        {
            HeedStatus status = HeedNative.heed_llama_field_layout(cName, field.Name, out nuint offset, out nuint size);
            if (status == HeedStatus.NotFound)
            {
                throw Mismatch(cName, $"field '{field.Name}' does not exist in llama.h");
            }
            Check(status, cName);
            long managedOffset = Marshal.OffsetOf(type, field.Name).ToInt64();
            int managedFieldSize = field.FieldType.IsPointer || field.FieldType.IsFunctionPointer
                ? IntPtr.Size
                : Marshal.SizeOf(field.FieldType == typeof(bool) ? typeof(byte) : field.FieldType);
            if ((long)offset != managedOffset || (int)size != managedFieldSize)
            {
                throw Mismatch(cName, $"field '{field.Name}' is at offset {offset} (size {size}) in llama.h " +
                                      $"but at {managedOffset} (size {managedFieldSize}) in C#");
            }
        }
        if ((int)nativeSize != managedSize)
        {
            throw Mismatch(cName, $"size is {nativeSize} bytes in llama.h but {managedSize} in C#");
        }
    }

    private static void Check(HeedStatus status, string cName)
    {
        if (status != HeedStatus.Ok)
        {
            throw new HeedNativeException($"cannot read the layout of {cName}: {HeedError.LastMessage()}", status);
        }
    }

    private static HeedNativeException Mismatch(string cName, string detail) =>
        new($"llama.cpp struct {cName} does not match Heed's binding: {detail}. " +
            "The native libraries were built from a different llama.cpp than v0.5.0; rebuild them with ./build.sh.");
}
