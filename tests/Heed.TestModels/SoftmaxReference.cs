namespace Heed.TestModels;

/// <summary>How far a fused per-key attention mass is from llama.cpp's own softmax summed the same way.</summary>
public static class SoftmaxReference
{
    /// <summary>‖fused − reference‖ / ‖reference‖ in float64; keys the fused array lacks count as 0.</summary>
    public static double RelativeError(float[] fused, double[] reference)
    {
        double diff = 0, norm = 0;
        for (int j = 0; j < reference.Length; j++)
        {
            double ours = j < fused.Length ? fused[j] : 0.0;
            diff += (ours - reference[j]) * (ours - reference[j]);
            norm += reference[j] * reference[j];
        }
        return Math.Sqrt(diff / norm);
    }
}
