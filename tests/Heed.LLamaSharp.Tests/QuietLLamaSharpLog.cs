using System.Runtime.CompilerServices;
using LLama.Native;

namespace Heed.LLamaSharp.Tests;

internal static class QuietLLamaSharpLog
{
    // LLamaSharp writes llama.cpp's whole log to the console unless told otherwise; before its
    // native library loads, route it nowhere so that test output stays readable.
    [ModuleInitializer]
    internal static void Install() => NativeLibraryConfig.All.WithLogCallback((_, _) => { });
}
