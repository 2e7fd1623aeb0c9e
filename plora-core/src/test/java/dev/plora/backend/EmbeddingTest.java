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

/** The embedding gather and its scatter-add, on every backend. */
class EmbeddingTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void gathersRowsConvertingToTheOutputDtype(String backendName) {
    SplittableRandom rng = new SplittableRandom(31);
    int vocab = 50, dim = 37, tokens = 23;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType tableType : BackendCases.floatDtypes()) {
        for (DType outType : BackendCases.floatDtypes()) {
          float[] table = Reference.random(rng, vocab * dim, tableType);
          int[] ids = ids(rng, tokens, vocab);
          Tensor idt = s.allocate(tokens, 2, DType.I32).colsView(1, 1).copyFrom(ids); // strided ids
          Tensor out = RmsNormTest.strided(s, Reference.nans(tokens * dim), tokens, dim, outType);
          Embedding.forward(backend, idt, RmsNormTest.strided(s, table, vocab, dim, tableType), out);
          float[] want = new float[tokens * dim];
          for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < dim; j++) {
              want[t * dim + j] = outType.round(table[ids[t] * dim + j]);
            }
          }
          assertArrayEquals(want, out.toFloatArray(), tableType + " -> " + outType);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void backwardAddsEveryTokensGradientToItsRow(String backendName) {
    SplittableRandom rng = new SplittableRandom(32);
    int vocab = 9, dim = 300, tokens = 41; // few ids: most rows gather many tokens
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        int[] ids = ids(rng, tokens, vocab);
        float[] dout = Reference.random(rng, tokens * dim, dtype), dtable0 = Reference.random(rng, vocab * dim, DType.F32);
        Tensor dtable = RmsNormTest.strided(s, dtable0, vocab, dim, DType.F32);
        Embedding.backward(backend, s.fromInts(ids, tokens, 1), RmsNormTest.strided(s, dout, tokens, dim, dtype), dtable);
        double[] want = new double[vocab * dim];
        for (int i = 0; i < want.length; i++) {
          want[i] = dtable0[i];
        }
        for (int t = 0; t < tokens; t++) {
          for (int j = 0; j < dim; j++) {
            want[ids[t] * dim + j] += dout[t * dim + j];
          }
        }
        assertTrue(Reference.relativeError(dtable.toFloatArray(), want) <= 1e-6, dtype + " dtable");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void anIdOutsideTheVocabularyWritesNothing(String backendName) {
    int vocab = 4, dim = 3;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor table = s.fromArray(Reference.random(new SplittableRandom(33), vocab * dim, DType.F32), vocab, dim,
          DType.F32);
      Tensor out = s.fromArray(Reference.nans(3 * dim), 3, dim, DType.F32);
      Tensor bad = s.fromInts(new int[] {1, 4, -1}, 3, 1);
      assertRefused(IllegalArgumentException.class, () -> Embedding.forward(backend, bad, table, out), "2 of 3",
          "[0, 4)", "token 1: 4");
      assertAllNaN(out);
      Tensor dtable = s.fromArray(Reference.nans(vocab * dim), vocab, dim, DType.F32);
      assertRefused(IllegalArgumentException.class, () -> Embedding.backward(backend, bad, out, dtable), "2 of 3");
      assertAllNaN(dtable);
      assertRefused(IllegalArgumentException.class,
          () -> Embedding.forward(backend, s.allocate(3, 1, DType.F32), table, out), "ids", "I32");
      assertRefused(IllegalArgumentException.class,
          () -> Embedding.forward(backend, s.fromInts(new int[] {0, 1}, 2, 1), table, out), "ids", "[3,1]");
      assertRefused(IllegalArgumentException.class,
          () -> Embedding.backward(backend, s.fromInts(new int[] {0, 1, 2}, 3, 1), out, s.allocate(4, 3, DType.BF16)),
          "dtable", "F32");
      assertEquals(0, countNonNaN(out));
    }
  }

  private static int countNonNaN(Tensor t) {
    int n = 0;
    for (float v : t.toFloatArray()) {
      n += Float.isNaN(v) ? 0 : 1;
    }
    return n;
  }

  private static int[] ids(SplittableRandom rng, int tokens, int vocab) {
    int[] ids = new int[tokens];
    for (int t = 0; t < tokens; t++) {
      ids[t] = rng.nextInt(vocab);
    }
    ids[0] = vocab - 1; // the last row too
    return ids;
  }
}
