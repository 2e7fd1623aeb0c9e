package dev.plora.backend;

import static dev.plora.testing.Refusals.assertAllNaN;
import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Attention of new tokens to a key/value cache against float64 references and against the full
 * attention kernel, on every backend: the caches are column views of one fused k|v buffer whose
 * rows past the visible ones hold NaN (a kernel that read them would return NaN), q and out are
 * strided views, out is NaN-poisoned before each call.
 */
class DecodeAttentionTest {
  /** n new tokens after past cached positions, heads over kvHeads of dim, and a scale. */
  record Case(int queries, int past, int heads, int kvHeads, int dim, float scale) {
    int rows() {
      return past + queries;
    }

    int capacity() { // unused rows past the visible ones
      return rows() + 7;
    }

    int kvWidth() { // k | v | one unused column
      return 2 * kvHeads * dim + 1;
    }

    @Override
    public String toString() {
      return "n=" + queries + " past=" + past + " H=" + heads + "/" + kvHeads + " D=" + dim;
    }
  }

  // awkward shapes: the first token of a sequence; one token after 150 with Hq=6/Hkv=2 and D=20;
  // five new tokens at once with D=128; MQA with an odd D; D=256 over more than one chunk of 64
  private static final Case[] CASES = {
      new Case(1, 0, 1, 1, 64, 0.125f),
      new Case(1, 150, 6, 2, 20, 1f / (float) Math.sqrt(20)),
      new Case(5, 37, 8, 2, 128, 1f / (float) Math.sqrt(128)),
      new Case(4, 0, 3, 1, 7, 0.9f),
      new Case(3, 70, 2, 2, 256, 0.0625f),
  };

  /** One case's inputs on a backend: values as stored. */
  private static final class Inputs {
    final Case c;
    final float[] q, kv; // [n, heads·dim], [rows, kvWidth]
    final Tensor qTensor, cache, kCache, vCache;

    Inputs(TensorScope s, Case c, DType dtype, SplittableRandom rng) {
      this.c = c;
      int qCols = c.heads * c.dim, kvCols = c.kvHeads * c.dim;
      q = Reference.random(rng, c.queries * qCols, dtype);
      kv = Reference.random(rng, c.rows() * c.kvWidth(), dtype);
      qTensor = s.allocate(c.queries, qCols + 3, dtype).colsView(2, qCols);
      qTensor.copyFrom(q);
      cache = s.allocate(c.capacity(), c.kvWidth(), dtype);
      cache.copyFrom(Reference.nans(c.capacity() * c.kvWidth()));
      cache.rowsView(0, c.rows()).copyFrom(kv);
      kCache = cache.colsView(0, kvCols);
      vCache = cache.colsView(kvCols, kvCols);
    }

    double q(int i, int h, int d) {
      return q[i * c.heads * c.dim + h * c.dim + d];
    }

    double k(int s, int g, int d) {
      return kv[s * c.kvWidth() + g * c.dim + d];
    }

    double v(int s, int g, int d) {
      return kv[s * c.kvWidth() + (c.kvHeads + g) * c.dim + d];
    }

    /** out in float64, straight from the definition: new token i sees rows 0 .. past + i. */
    double[] expected() {
      int hd = c.heads * c.dim, group = c.heads / c.kvHeads;
      double[] out = new double[c.queries * hd];
      for (int i = 0; i < c.queries; i++) {
        int visible = c.past + i + 1;
        for (int h = 0; h < c.heads; h++) {
          int g = h / group;
          double[] p = new double[visible];
          double max = Double.NEGATIVE_INFINITY, sum = 0;
          for (int s = 0; s < visible; s++) {
            double dot = 0;
            for (int d = 0; d < c.dim; d++) {
              dot += q(i, h, d) * k(s, g, d);
            }
            p[s] = c.scale * dot;
            max = Math.max(max, p[s]);
          }
          for (int s = 0; s < visible; s++) {
            p[s] = Math.exp(p[s] - max);
            sum += p[s];
          }
          for (int s = 0; s < visible; s++) {
            for (int d = 0; d < c.dim; d++) {
              out[i * hd + h * c.dim + d] += p[s] / sum * v(s, g, d);
            }
          }
        }
      }
      return out;
    }
  }

  private static Tensor poisonedOut(TensorScope s, Case c, DType dtype) {
    int cols = c.heads * c.dim;
    Tensor out = s.allocate(c.queries, cols + 5, dtype).colsView(1, cols);
    out.copyFrom(Reference.nans(c.queries * cols));
    return out;
  }

  private static void decode(Backend backend, Inputs in, Tensor out) {
    Case c = in.c;
    DecodeAttention.forward(backend, in.qTensor, in.kCache, in.vCache, c.past, c.scale, c.heads, c.kvHeads, out);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void matchesFloat64Reference(String backendName) {
    SplittableRandom rng = new SplittableRandom(21);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (Case c : CASES) {
          Inputs in = new Inputs(s, c, dtype, rng);
          Tensor out = poisonedOut(s, c, dtype);
          decode(backend, in, out);
          double err = Reference.relativeError(out.toFloatArray(), in.expected());
          assertTrue(err <= Reference.tolerance(dtype), dtype + " " + c + ": relative error " + err);
        }
      }
    }
  }

  /**
   * Decoding against the cache gives the full attention kernel's rows for those positions: the
   * whole sequence as one document through {@link Attention#forward}, its last n rows compared.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void matchesFullAttentionRows(String backendName) {
    SplittableRandom rng = new SplittableRandom(22);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (Case c : CASES) {
          Inputs in = new Inputs(s, c, dtype, rng);
          int qCols = c.heads * c.dim, rows = c.rows();
          Tensor qFull = s.allocate(rows, qCols, dtype);
          qFull.copyFrom(Reference.random(rng, rows * qCols, dtype));
          backend.copy(in.qTensor, qFull.rowsView(c.past, c.queries)); // the new tokens' queries last
          Tensor full = s.allocate(rows, qCols, dtype), lse = s.allocate(rows, c.heads, DType.F32);
          Attention.forward(backend, qFull, in.kCache.rowsView(0, rows), in.vCache.rowsView(0, rows),
              s.fromInts(new int[rows], rows, 1), c.scale, c.heads, c.kvHeads, full, lse);
          Tensor out = poisonedOut(s, c, dtype);
          decode(backend, in, out);
          float[] expected = full.rowsView(c.past, c.queries).toFloatArray(), got = out.toFloatArray();
          double[] ref = new double[expected.length];
          for (int i = 0; i < ref.length; i++) {
            ref[i] = expected[i];
          }
          double err = Reference.relativeError(got, ref);
          assertTrue(err <= Reference.tolerance(dtype), dtype + " " + c + ": relative error to attention " + err);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void refusalsNameTheArgument(String backendName) {
    Case c = new Case(2, 5, 4, 2, 8, 0.3f);
    SplittableRandom rng = new SplittableRandom(23);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Inputs in = new Inputs(s, c, DType.F32, rng);
      Tensor out = poisonedOut(s, c, DType.F32);
      Class<IllegalArgumentException> iae = IllegalArgumentException.class;
      assertRefused(iae, () -> DecodeAttention.forward(backend, in.qTensor, in.kCache, in.vCache, c.capacity() - 1,
          c.scale, c.heads, c.kvHeads, out), "decodeAttention", "kCache", "14 rows", "past + new tokens = 13 + 2");
      assertRefused(iae, () -> DecodeAttention.forward(backend, in.qTensor, in.kCache, in.vCache, -1, c.scale,
          c.heads, c.kvHeads, out), "past", "-1");
      assertRefused(iae, () -> DecodeAttention.forward(backend, in.qTensor, in.kCache.colsView(0, 8), in.vCache,
          c.past, c.scale, c.heads, c.kvHeads, out), "kCache", "[14,8]", "16 columns");
      assertRefused(iae, () -> DecodeAttention.forward(backend, in.qTensor, in.kCache, in.vCache, c.past, c.scale,
          4, 3, out), "heads 4", "kvHeads 3");
      assertRefused(iae, () -> DecodeAttention.forward(backend, in.qTensor, in.kCache, in.vCache, c.past,
          Float.POSITIVE_INFINITY, c.heads, c.kvHeads, out), "scale");
      assertRefused(iae, () -> DecodeAttention.forward(backend, in.qTensor, in.kCache, in.vCache, c.past, c.scale,
          c.heads, c.kvHeads, in.cache.view(0, 0, 2, 32)), "out", "overlaps", "kCache");
      Tensor halfCache = s.allocate(c.capacity(), 16, DType.BF16);
      assertRefused(iae, () -> DecodeAttention.forward(backend, in.qTensor, halfCache, in.vCache, c.past, c.scale,
          c.heads, c.kvHeads, out), "kCache", "BF16", "F32");
      assertAllNaN(out);
    }
  }
}
