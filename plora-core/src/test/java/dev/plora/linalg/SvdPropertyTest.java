package dev.plora.linalg;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * Random shapes, ranks, scales from 1e-200 to 1e200 and the odd NaN or infinity: every call either
 * returns orthonormal factors whose singular values bound the exact ones from below (and match
 * them and rebuild the matrix when nothing is truncated) or is refused with an
 * IllegalArgumentException before LAPACK sees it.
 */
class SvdPropertyTest {
  private static final double[] SCALES = {1e-200, 1e-5, 1, 1e5, 1e200};

  @Property
  void decomposesOrRefuses(@ForAll @IntRange(min = 0, max = 41) int rows, @ForAll @IntRange(min = 0, max = 41) int cols,
      @ForAll @IntRange(min = -1, max = 42) int rank, @ForAll @IntRange(min = 0, max = 4) int scaleIndex,
      @ForAll @IntRange(min = 0, max = 9) int poison, @ForAll long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    double scale = SCALES[scaleIndex];
    double[] m = new double[rows * cols];
    for (int i = 0; i < m.length; i++) {
      m[i] = scale * rng.nextGaussian();
    }
    boolean poisoned = poison == 0 && m.length > 0; // one case in ten
    if (poisoned) {
      m[rng.nextInt(m.length)] = rng.nextBoolean() ? Double.NaN : Double.POSITIVE_INFINITY;
    }
    boolean valid = rows >= 1 && cols >= 1 && !poisoned && rank >= 1 && rank <= Math.min(rows, cols);
    if (!valid) {
      assertThrows(IllegalArgumentException.class, () -> Svd.truncated(m, rows, cols, rank, seed));
      return;
    }
    Svd svd = Svd.truncated(m, rows, cols, rank, seed);
    double[] all = Svd.singularValues(m, rows, cols);
    double top = all[0] / scale;
    for (int t = 0; t < rank; t++) { // exact, or a randomized estimate: never above the truth, close below it
      double st = svd.s()[t] / scale, truth = all[t] / scale;
      assertTrue(st >= 0 && (t == 0 || svd.s()[t] <= svd.s()[t - 1]), "descending");
      assertTrue(st <= truth + 1e-12 * top && st >= 0.9 * truth - 1e-12 * top, "singular value " + t + ": " + st
          + " against " + truth);
    }
    for (int p = 0; p < rank; p++) { // orthonormal columns of U and rows of Vᵀ
      for (int q = 0; q <= p; q++) {
        double du = 0, dv = 0;
        for (int i = 0; i < rows; i++) {
          du += svd.u()[i * rank + p] * svd.u()[i * rank + q];
        }
        for (int j = 0; j < cols; j++) {
          dv += svd.vt()[p * cols + j] * svd.vt()[q * cols + j];
        }
        assertEquals(p == q ? 1 : 0, du, 1e-12, "U columns " + p + ", " + q);
        assertEquals(p == q ? 1 : 0, dv, 1e-12, "V rows " + p + ", " + q);
      }
    }
    if (rank == Math.min(rows, cols)) { // nothing truncated: U·S·Vᵀ is M
      for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) {
          double x = 0;
          for (int t = 0; t < rank; t++) {
            x += svd.u()[i * rank + t] * (svd.s()[t] / scale) * svd.vt()[t * cols + j];
          }
          assertEquals(m[i * cols + j] / scale, x, 1e-13 * top * (rows + cols));
        }
      }
    }
  }
}
