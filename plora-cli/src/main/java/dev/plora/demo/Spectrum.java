package dev.plora.demo;

/** The rank measures the demo reports from singular values ({@link dev.plora.linalg.Svd#singularValues}). */
public final class Spectrum {
  private Spectrum() {}

  /** Entropy-based effective rank: exp(−Σ pᵢ ln pᵢ) with pᵢ = σᵢ / Σσ (Roy and Vetterli, 2007). */
  public static double effectiveRank(double[] sv) {
    double sum = 0;
    for (double s : sv) {
      sum += s;
    }
    if (sum <= 0) {
      return 0;
    }
    double h = 0;
    for (double s : sv) {
      if (s > 0) {
        double p = s / sum;
        h -= p * Math.log(p);
      }
    }
    return Math.exp(h);
  }

  /** Singular values above {@code fraction} of the largest. */
  public static int rankAbove(double[] sv, double fraction) {
    double max = 0;
    for (double s : sv) {
      max = Math.max(max, s);
    }
    int count = 0;
    for (double s : sv) {
      if (max > 0 && s > fraction * max) {
        count++;
      }
    }
    return count;
  }
}
