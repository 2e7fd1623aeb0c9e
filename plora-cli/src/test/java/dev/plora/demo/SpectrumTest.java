package dev.plora.demo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.plora.linalg.Svd;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SpectrumTest {
  @Test
  void singularValuesOfAKnownMatrix() {
    // rows scaled by 3, 2, 1 of a rotation: singular values 3, 2, 1
    double c = Math.cos(0.3), s = Math.sin(0.3);
    double[] m = {3 * c, -3 * s, 0, 2 * s, 2 * c, 0, 0, 0, 1};
    double[] sv = Svd.singularValues(m, 3, 3);
    assertEquals(3, sv[0], 1e-12);
    assertEquals(2, sv[1], 1e-12);
    assertEquals(1, sv[2], 1e-12);
  }

  @Test
  void aRankKProductHasKSingularValuesAndRanksFollow() {
    SplittableRandom rng = new SplittableRandom(1);
    int n = 40, k = 5;
    double[] b = new double[n * k], a = new double[k * n];
    for (int i = 0; i < b.length; i++) {
      b[i] = rng.nextDouble() - 0.5;
      a[i] = rng.nextDouble() - 0.5;
    }
    double[] m = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        for (int t = 0; t < k; t++) {
          m[i * n + j] += b[i * k + t] * a[t * n + j];
        }
      }
    }
    double[] sv = Svd.singularValues(m, n, n);
    assertEquals(k, Spectrum.rankAbove(sv, 0.01));
    assertEquals(0, sv[k] / sv[0], 1e-6);
    double[] flat = new double[16];
    java.util.Arrays.fill(flat, 2.0);
    assertEquals(16, Spectrum.effectiveRank(flat), 1e-9);
    assertEquals(1, Spectrum.effectiveRank(new double[] {5, 0, 0}), 1e-12);
  }
}
