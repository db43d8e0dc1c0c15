using System.Runtime.InteropServices;
using Heed.Interop.Native;

namespace Heed;

/// <summary>Reads libheed's thread-local error and turns failed statuses into exceptions.</summary>
internal static class HeedError
{
    public static string LastMessage() => Marshal.PtrToStringUTF8(HeedNative.heed_last_error()) ?? "";

    public static void ThrowIfFailed(HeedStatus status, string operation)
    {
        if (status == HeedStatus.Ok)
        {
            return;
        }
        string message = $"{operation} failed ({status}): {LastMessage()}";
        throw status switch
        {
            HeedStatus.InvalidArgument => new ArgumentException(message),
            HeedStatus.OutOfMemory => new OutOfMemoryException(message),
            _ => new HeedNativeException(message, status),
        };
    }
}
