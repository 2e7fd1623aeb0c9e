package dev.plora.model;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.CrossEntropy;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The chunked head + loss against the whole [tokens, vocab] computation in float64. */
class LmHeadLossTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void chunksAddUpToTheWholeBatch(String backendName) {
    SplittableRandom rng = new SplittableRandom(61);
    int tokens = 37, hidden = 24, vocab = 53;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        float[] h = Reference.random(rng, tokens * hidden, dtype), w = Reference.random(rng, vocab * hidden, dtype);
        int[] targets = new int[tokens];
        for (int t = 0; t < tokens; t++) {
          targets[t] = t % 5 == 0 ? CrossEntropy.IGNORE_INDEX : rng.nextInt(vocab);
        }
        float[] dw0 = Reference.random(rng, vocab * hidden, DType.F32);
        // float64 reference over the whole batch
        double[] dh = new double[tokens * hidden], dw = new double[vocab * hidden];
        for (int e = 0; e < dw.length; e++) {
          dw[e] = dw0[e];
        }
        double loss = 0;
        int scored = 0;
        for (int t = 0; t < tokens; t++) {
          scored += targets[t] == CrossEntropy.IGNORE_INDEX ? 0 : 1;
        }
        for (int t = 0; t < tokens; t++) {
          if (targets[t] == CrossEntropy.IGNORE_INDEX) {
            continue;
          }
          double[] z = new double[vocab];
          double max = Double.NEGATIVE_INFINITY, sum = 0;
          for (int v = 0; v < vocab; v++) {
            for (int k = 0; k < hidden; k++) {
              z[v] += (double) h[t * hidden + k] * w[v * hidden + k];
            }
            max = Math.max(max, z[v]);
          }
          for (int v = 0; v < vocab; v++) {
            sum += Math.exp(z[v] - max);
          }
          double lse = max + Math.log(sum);
          loss += (lse - z[targets[t]]) / scored;
          for (int v = 0; v < vocab; v++) {
            double g = (Math.exp(z[v] - lse) - (v == targets[t] ? 1 : 0)) / scored;
            for (int k = 0; k < hidden; k++) {
              dh[t * hidden + k] += g * w[v * hidden + k];
              dw[v * hidden + k] += g * h[t * hidden + k];
            }
          }
        }
        for (int chunk : new int[] {8, 37, 100}) {
          try (LmHeadLoss head = new LmHeadLoss(backend, vocab, dtype, chunk)) {
            Tensor dhT = s.fromArray(Reference.nans(tokens * hidden), tokens, hidden, dtype);
            Tensor dwT = s.fromArray(dw0, vocab, hidden, DType.F32);
            LmHeadLoss.Result r = head.forward(s.fromArray(h, tokens, hidden, dtype), s.fromArray(w, vocab, hidden,
                dtype), s.fromInts(targets, tokens, 1), scored, dhT, dwT);
            String what = dtype + " chunks of " + chunk;
            assertEquals(scored, r.tokens(), what);
            assertEquals(loss, r.loss(), dtype == DType.F32 ? 1e-5 : 2e-3, what + " loss");
            assertTrue(Reference.relativeError(dhT.toFloatArray(), dh) <= Reference.tolerance(dtype), what + " dhidden");
            assertTrue(Reference.relativeError(dwT.toFloatArray(), dw) <= Reference.tolerance(dtype), what + " dweight");
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void refusesABatchWithNothingToScore(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend);
        LmHeadLoss head = new LmHeadLoss(backend, 5, DType.F32)) {
      Tensor h = s.allocate(2, 3, DType.F32), w = s.allocate(5, 3, DType.F32);
      assertRefused(IllegalArgumentException.class,
          () -> head.forward(h, w, s.fromInts(new int[] {-100, -100}, 2, 1), 0, null, null), "no scored token");
      assertRefused(IllegalArgumentException.class,
          () -> head.forward(h, w, s.fromInts(new int[] {1, -100}, 2, 1), 2, null, null), "hold 1 scored tokens, not 2");
      assertRefused(IllegalArgumentException.class,
          () -> head.forward(h, s.allocate(4, 3, DType.F32), s.fromInts(new int[] {1, 2}, 2, 1), 2, null, null),
          "weight", "[5,3]");
      assertRefused(IllegalArgumentException.class,
          () -> head.forward(h, w, s.fromInts(new int[] {1, 2}, 2, 1), 2, null, s.allocate(5, 3, DType.BF16)),
          "dweight");
    }
  }
}
