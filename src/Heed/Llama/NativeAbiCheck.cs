using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
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
    private const DynamicallyAccessedMemberTypes Fields =
        DynamicallyAccessedMemberTypes.PublicFields | DynamicallyAccessedMemberTypes.NonPublicFields;

    /// <summary>Throws <see cref="HeedNativeException"/> naming the first struct or field that differs.</summary>
    // The mirrors' fields are read by reflection: these keep them in trimmed and NativeAOT apps
    // (one line per entry of LlamaStructs.ByCName; a missing one fails the check, it never passes).
    [DynamicDependency(Fields, typeof(LlamaModelParams))]
    [DynamicDependency(Fields, typeof(LlamaContextParams))]
    [DynamicDependency(Fields, typeof(LlamaBatch))]
    [DynamicDependency(Fields, typeof(LlamaSamplerChainParams))]
    [DynamicDependency(Fields, typeof(LlamaChatMessage))]
    [DynamicDependency(Fields, typeof(LlamaTokenData))]
    [DynamicDependency(Fields, typeof(LlamaTokenDataArray))]
    [DynamicDependency(Fields, typeof(LlamaPerfContextData))]
    // The trimmer sees the dictionary's values through KeyValuePair.Deconstruct (IL2067); the
    // analyzer in the build, as a plain read (IL2072). Both are covered by the attributes above.
    [UnconditionalSuppressMessage("Trimming", "IL2067", Justification = "The DynamicDependency attributes above keep the fields.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "The DynamicDependency attributes above keep the fields.")]
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

    internal static void VerifyStruct(string cName, [DynamicallyAccessedMembers(Fields)] Type type)
    {
        Check(HeedNative.heed_llama_struct_size(cName, out nuint nativeSize), cName);
        FieldInfo[] fields = type.GetFields(BindingFlags.Public | BindingFlags.Instance | BindingFlags.NonPublic);
        (Dictionary<string, (long Offset, int Size)> layout, int managedSize) = ManagedLayout(type, fields);
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
            (long managedOffset, int managedFieldSize) = layout[field.Name];
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

    // Marshal.OffsetOf reports the marshalled layout (a bool there is 4 bytes), not the memory
    // that a blittable call passes. The memory layout of a sequential unmanaged struct follows
    // natural alignment; this computes it and cross-checks the total with the runtime's own size.
    private static (Dictionary<string, (long, int)> Layout, int Size) ManagedLayout(Type type, FieldInfo[] fields)
    {
        var layout = new Dictionary<string, (long, int)>();
        long offset = 0;
        int maxAlign = 1;
        // Declaration order, as GetFields lists it (NativeAOT has no metadata tokens to sort by). An
        // order that differed would show as a mismatch with llama.h or with the runtime's size.
        foreach (FieldInfo field in fields)
        {
            int size = FieldSize(field.FieldType);
            offset = (offset + size - 1) / size * size;
            layout[field.Name] = (offset, size);
            offset += size;
            maxAlign = Math.Max(maxAlign, size);
        }
        int total = (int)((offset + maxAlign - 1) / maxAlign * maxAlign);
        int runtimeSize = RuntimeHelpers.SizeOf(type.TypeHandle);
        if (runtimeSize != total)
        {
            throw new HeedNativeException($"internal: computed layout of {type.Name} ({total} bytes) disagrees with the runtime ({runtimeSize} bytes).");
        }
        return (layout, total);
    }

    private static int FieldSize(Type type) =>
        type.IsPointer || type.IsFunctionPointer || type == typeof(IntPtr) || type == typeof(UIntPtr) ? IntPtr.Size
        : type == typeof(bool) || type == typeof(byte) || type == typeof(sbyte) ? 1
        : type == typeof(short) || type == typeof(ushort) ? 2
        : type == typeof(int) || type == typeof(uint) || type == typeof(float) ? 4
        : type == typeof(long) || type == typeof(ulong) || type == typeof(double) ? 8
        : throw new HeedNativeException($"internal: no layout rule for field type {type}");

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
