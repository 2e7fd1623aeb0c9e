package dev.plora.linalg;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JacobiTest {
  /** A·v = λ·v for every pair, V orthonormal, and the eigenvalues add up to the trace. */
  @ParameterizedTest
  @ValueSource(ints = {1, 2, 7, 64, 129})
  void decomposesASymmetricMatrix(int n) {
    SplittableRandom rng = new SplittableRandom(n);
    double[] a = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j <= i; j++) {
        double x = rng.nextDouble(-1, 1);
        a[i * n + j] = x;
        a[j * n + i] = x;
      }
    }
    if (n > 2) {
      a[n + 2] = a[2 * n + 1] = 0; // an entry already zero
    }
    double[] original = a.clone();
    double trace = 0, norm = 0;
    for (int i = 0; i < n; i++) {
      trace += a[i * n + i];
    }
    for (double x : a) {
      norm += x * x;
    }
    Jacobi.Eigen e = Jacobi.decompose(a, n, true);
    double sum = 0;
    for (double value : e.values()) {
      sum += value;
    }
    assertEquals(trace, sum, 1e-12 * Math.sqrt(norm) * n);
    double[] v = e.vectors();
    for (int j = 0; j < n; j++) {
      for (int i = 0; i < n; i++) { // (A·v_j)_i = λ_j v_ij
        double av = 0;
        for (int k = 0; k < n; k++) {
          av += original[i * n + k] * v[k * n + j];
        }
        assertEquals(e.values()[j] * v[i * n + j], av, 1e-10 * Math.sqrt(norm), "residual of pair " + j);
      }
      for (int l = 0; l <= j; l++) { // v_lᵀ·v_j = δ
        double dot = 0;
        for (int k = 0; k < n; k++) {
          dot += v[k * n + l] * v[k * n + j];
        }
        assertEquals(l == j ? 1 : 0, dot, 1e-12 * n, "orthonormal " + l + "," + j);
      }
    }
    assertTrue(Jacobi.decompose(original.clone(), n, false).values().length == n);
  }
}
