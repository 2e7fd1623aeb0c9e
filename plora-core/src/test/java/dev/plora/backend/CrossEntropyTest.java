package dev.plora.backend;

import static dev.plora.testing.Refusals.assertAllNaN;
import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The token cross-entropy against float64, on every backend. */
class CrossEntropyTest {
  /** Per-row losses (NaN for ignored rows) and gradScale·(softmax − onehot) (0 on ignored rows). */
  static double[][] reference(float[] logits, int rows, int vocab, int[] targets, double gradScale) {
    double[] loss = new double[rows], grad = new double[rows * vocab];
    for (int i = 0; i < rows; i++) {
      if (targets[i] == CrossEntropy.IGNORE_INDEX) {
        loss[i] = Double.NaN;
        continue;
      }
      double max = Double.NEGATIVE_INFINITY, sum = 0;
      for (int j = 0; j < vocab; j++) {
        max = Math.max(max, logits[i * vocab + j]);
      }
      for (int j = 0; j < vocab; j++) {
        sum += Math.exp(logits[i * vocab + j] - max);
      }
      double lse = max + Math.log(sum);
      loss[i] = lse - logits[i * vocab + targets[i]];
      for (int j = 0; j < vocab; j++) {
        grad[i * vocab + j] = gradScale * (Math.exp(logits[i * vocab + j] - lse) - (j == targets[i] ? 1 : 0));
      }
    }
    return new double[][] {loss, grad};
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void lossAndGradientMatchFloat64(String backendName) {
    SplittableRandom rng = new SplittableRandom(51);
    int[][] shapes = {{1, 1}, {13, 7}, {29, 1000}, {3, 32003}};
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (int[] shape : shapes) {
          int rows = shape[0], vocab = shape[1];
          float[] x = RmsNormTest.scaled(rng, rows * vocab, dtype, 8f);
          int[] targets = new int[rows];
          for (int i = 0; i < rows; i++) {
            targets[i] = i % 4 == 3 ? CrossEntropy.IGNORE_INDEX : rng.nextInt(vocab);
          }
          float scale = 1f / 7;
          Tensor logits = RmsNormTest.strided(s, x, rows, vocab, dtype);
          Tensor ids = s.fromInts(targets, rows, 1);
          Tensor grad = RmsNormTest.strided(s, Reference.nans(rows * vocab), rows, vocab, dtype);
          CrossEntropy.Sum sum = CrossEntropy.forward(backend, logits, ids, scale, grad);
          double[][] ref = reference(x, rows, vocab, targets, scale);
          double want = 0;
          long counted = 0;
          for (double l : ref[0]) {
            if (!Double.isNaN(l)) {
              want += l;
              counted++;
            }
          }
          String what = dtype + " [" + rows + "," + vocab + "]";
          assertEquals(counted, sum.tokens(), what + " scored tokens");
          assertEquals(want, sum.loss(), 1e-5 * Math.max(1, Math.abs(want)), what + " loss");
          // the gradient's elements are each rounded once to the dtype: compare elementwise
          float[] got = grad.toFloatArray();
          double tol = dtype == DType.F32 ? 1e-6 : 1e-2;
          for (int e = 0; e < got.length; e++) {
            assertEquals(ref[1][e], got[e], tol * scale + Math.abs(ref[1][e]) * tol, what + " dlogits[" + e + "]");
          }

          Tensor inPlace = RmsNormTest.strided(s, x, rows, vocab, dtype);
          CrossEntropy.Sum again = CrossEntropy.forward(backend, inPlace, ids, scale, inPlace);
          assertEquals(sum.loss(), again.loss(), 0, what + " in place: the same loss");
          assertArrayEquals(got, inPlace.toFloatArray(), what + " in place: the same gradient");
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void aTargetOutsideTheVocabularyWritesNothing(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor logits = s.fromArray(Reference.random(new SplittableRandom(52), 12, DType.F32), 3, 4, DType.F32);
      Tensor grad = s.fromArray(Reference.nans(12), 3, 4, DType.F32);
      assertRefused(IllegalArgumentException.class,
          () -> CrossEntropy.forward(backend, logits, s.fromInts(new int[] {0, 4, -100}, 3, 1), 1f, grad), "1 of 3",
          "[0, 4)", "-100");
      assertRefused(IllegalArgumentException.class,
          () -> CrossEntropy.forward(backend, logits, s.fromInts(new int[] {0, -1, 2}, 3, 1), 1f, grad), "1 of 3");
      assertAllNaN(grad);
      assertRefused(IllegalArgumentException.class,
          () -> CrossEntropy.forward(backend, logits, s.allocate(3, 1, DType.F32), 1f, grad), "targets", "I32");
      assertRefused(IllegalArgumentException.class, () -> CrossEntropy.forward(backend, logits,
          s.fromInts(new int[] {0, 1, 2}, 3, 1), Float.NaN, grad), "gradScale");
      assertRefused(IllegalArgumentException.class, () -> CrossEntropy.forward(backend, logits,
          s.fromInts(new int[] {0, 1, 2}, 3, 1), 1f, s.allocate(3, 4, DType.BF16)), "dlogits", "BF16");
      assertTrue(Float.isNaN(grad.toFloatArray()[0]));
    }
  }
}
