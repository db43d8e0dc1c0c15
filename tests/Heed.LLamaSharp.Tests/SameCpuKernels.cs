using System.Runtime.CompilerServices;
using LLama.Native;

namespace Heed.LLamaSharp.Tests;

/// <summary>
/// Both runtimes on the same CPU instruction set. Heed's default CPU build targets x86-64-v3 (AVX2);
/// on a CPU with AVX-512, LLamaSharp would load its avx512 build, and the two engines' matrix
/// products then round differently (ICR scores measured 1.06e-3 apart relative to the top score on
/// an AVX-512 machine, against 0 with the same kernels). The equivalence tests compare the engines,
/// not two instruction sets, so LLamaSharp gets its AVX2 build here, before any test loads it.
/// </summary>
internal static class SameCpuKernels
{
    [ModuleInitializer]
    internal static void UseLLamaSharpsAvx2Build()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "avx2");
        if (!File.Exists(Path.Combine(folder, "libllama.so")))
        {
            throw new InvalidOperationException($"LLamaSharp's AVX2 build is not in {folder}: restore LLamaSharp.Backend.Cpu");
        }
        NativeLibraryConfig.All.WithLibrary(Path.Combine(folder, "libllama.so"), Path.Combine(folder, "libmtmd.so"));
    }
}
