package dev.plora.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** gemm against a float64 reference on random awkward shapes, all transposes, strided views. */
class GemmTest {
  private static final int SHAPES = 56;

  /** Every backend x input dtype, with c in the input dtype and (for 16-bit inputs) in F32. */
  static Stream<Arguments> cases() {
    return BackendCases.names().flatMap(b -> Stream.of(BackendCases.floatDtypes()).flatMap(d -> d == DType.F32
        ? Stream.of(Arguments.of(b, d, d))
        : Stream.of(Arguments.of(b, d, d), Arguments.of(b, d, DType.F32))));
  }

  @ParameterizedTest(name = "{0} {1} inputs, {2} output")
  @MethodSource("cases")
  void matchesFloat64Reference(String backendName, DType dtype, DType outType) {
    SplittableRandom rng = new SplittableRandom(1000 + dtype.ordinal() * 10 + outType.ordinal());
    try (Backend backend = BackendCases.open(backendName)) {
      for (int s = 0; s < SHAPES; s++) {
        int m = s % 7 == 0 ? 1 : 1 + rng.nextInt(67);
        int n = 1 + rng.nextInt(61);
        int k = s % 11 == 0 ? 1 : 1 + rng.nextInt(97);
        boolean transA = (s & 1) != 0;
        boolean transB = (s & 2) != 0;
        float alpha = s % 3 == 0 ? 1f : (float) (rng.nextDouble() * 4 - 2);
        float beta = s % 4 == 0 ? 0f : (float) (rng.nextDouble() * 2 - 1);
        check(backend, rng, dtype, outType, m, n, k, transA, transB, alpha, beta, s % 2 == 0);
      }
    }
  }

  private static void check(Backend backend, SplittableRandom rng, DType dtype, DType outType, int m, int n, int k,
      boolean transA, boolean transB, float alpha, float beta, boolean strided) {
    int ar = transA ? k : m, ac = transA ? m : k;
    int br = transB ? n : k, bc = transB ? k : n;
    String label = "m=" + m + " n=" + n + " k=" + k + " transA=" + transA + " transB=" + transB + " alpha=" + alpha
        + " beta=" + beta + " strided=" + strided;
    try (TensorScope scope = new TensorScope(backend)) {
      Tensor a = operand(scope, ar, ac, dtype, strided);
      Tensor b = operand(scope, br, bc, dtype, strided);
      // c is a view inside a NaN-filled parent: padding rows/columns must stay NaN.
      Tensor cParent = scope.allocate(m + 2, n + 3, outType).fill(Float.NaN);
      Tensor c = cParent.view(1, 2, m, n);
      float[] av = Reference.random(rng, ar * ac, dtype);
      float[] bv = Reference.random(rng, br * bc, dtype);
      float[] cv = beta == 0 ? Reference.nans(m * n) : Reference.random(rng, m * n, outType);
      a.copyFrom(av);
      b.copyFrom(bv);
      c.copyFrom(cv);

      backend.gemm(transA, a, transB, b, alpha, beta, c);

      double[] ref = Reference.gemm(transA, av, ac, transB, bv, bc, alpha, beta, cv, m, n, k);
      double err = Reference.relativeError(c.toFloatArray(), ref);
      assertTrue(err <= Reference.tolerance(outType), label + ": relative error " + err);
      float[] parent = cParent.toFloatArray();
      int untouched = 0;
      for (int i = 0; i < m + 2; i++) {
        for (int j = 0; j < n + 3; j++) {
          boolean inside = i >= 1 && i <= m && j >= 2 && j < n + 2;
          if (!inside && Float.isNaN(parent[i * (n + 3) + j])) {
            untouched++;
          }
        }
      }
      assertEquals((m + 2) * (n + 3) - m * n, untouched, label + ": gemm wrote outside c");
    }
  }

  /** A fresh tensor, or (strided) a view into a wider, taller buffer. */
  private static Tensor operand(TensorScope scope, int rows, int cols, DType dtype, boolean strided) {
    if (!strided) {
      return scope.allocate(rows, cols, dtype);
    }
    return scope.allocate(rows + 1, cols + 5, dtype).view(1, 3, rows, cols);
  }
}
