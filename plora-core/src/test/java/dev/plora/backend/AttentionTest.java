package dev.plora.backend;

import static dev.plora.testing.Refusals.assertAllNaN;
import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Causal grouped-query attention against float64 references on every backend: q, k and v are
 * column views of one fused buffer, the outputs strided views, all NaN-poisoned before each call.
 */
class AttentionTest {
  /** T tokens in documents starting at {@code docs}, heads over kvHeads of dim, and a scale. */
  record Case(int tokens, int heads, int kvHeads, int dim, float scale, int... docs) {
    int[] seqStart() {
      int[] s = new int[tokens];
      for (int t = 0; t < tokens; t++) {
        for (int d : docs) {
          if (d <= t) {
            s[t] = d;
          }
        }
      }
      return s;
    }

    int width() { // the fused q|k|v buffer, plus three unused columns
      return (heads + 2 * kvHeads) * dim + 3;
    }

    @Override
    public String toString() {
      return "T=" + tokens + " H=" + heads + "/" + kvHeads + " D=" + dim;
    }
  }

  // awkward shapes: one token; three packed documents (one of a single token) with Hq=6/Hkv=2 and
  // D=20; Hq=Hkv with D=64; documents that start inside a tile of 64 and beyond its first key
  // tile; D=128 and D=256 over several tiles
  private static final Case[] CASES = {
      new Case(1, 1, 1, 64, 0.125f, 0),
      new Case(37, 6, 2, 20, 1f / (float) Math.sqrt(20), 0, 11, 12),
      new Case(37, 3, 3, 64, 2f, 0, 30),
      new Case(200, 4, 2, 64, 0.125f, 0, 70, 71, 140),
      new Case(150, 2, 1, 128, 1f / (float) Math.sqrt(128), 0, 70, 71, 140),
      new Case(70, 2, 2, 256, 0.0625f, 0),
  };

  /** The inputs of one case on a backend, and what the reference needs of them. */
  private static final class Inputs {
    final Case c;
    final DType dtype;
    final float[] fused; // T x width, row-major, values as stored
    final float[] dout;
    final Tensor buffer, q, k, v, seqStart, doutTensor;

    Inputs(TensorScope s, Case c, DType dtype, SplittableRandom rng) {
      this.c = c;
      this.dtype = dtype;
      fused = Reference.random(rng, c.tokens * c.width(), dtype);
      buffer = s.fromArray(fused, c.tokens, c.width(), dtype);
      q = buffer.colsView(0, c.heads * c.dim);
      k = buffer.colsView(c.heads * c.dim, c.kvHeads * c.dim);
      v = buffer.colsView((c.heads + c.kvHeads) * c.dim, c.kvHeads * c.dim);
      seqStart = s.fromInts(c.seqStart(), c.tokens, 1);
      dout = Reference.random(rng, c.tokens * c.heads * c.dim, dtype);
      doutTensor = s.fromArray(dout, c.tokens, c.heads * c.dim, dtype);
    }

    double q(int t, int h, int d) {
      return fused[t * c.width() + h * c.dim + d];
    }

    double k(int t, int g, int d) {
      return fused[t * c.width() + (c.heads + g) * c.dim + d];
    }

    double v(int t, int g, int d) {
      return fused[t * c.width() + (c.heads + c.kvHeads + g) * c.dim + d];
    }
  }

  /** out, lse and the gradients in float64, straight from the definition (plain softmax). */
  private static final class Expected {
    final double[] out, lse, dq, dk, dv;

    Expected(Case c, int[] seqStart, Lookup q, Lookup k, Lookup v, float[] dout) {
      int hd = c.heads * c.dim, kd = c.kvHeads * c.dim, group = c.heads / c.kvHeads;
      out = new double[c.tokens * hd];
      lse = new double[c.tokens * c.heads];
      dq = new double[c.tokens * hd];
      dk = new double[c.tokens * kd];
      dv = new double[c.tokens * kd];
      for (int h = 0; h < c.heads; h++) {
        int g = h / group;
        for (int t = 0; t < c.tokens; t++) {
          double[] p = new double[t + 1];
          double max = Double.NEGATIVE_INFINITY;
          for (int s = seqStart[t]; s <= t; s++) {
            double dot = 0;
            for (int d = 0; d < c.dim; d++) {
              dot += q.at(t, h, d) * k.at(s, g, d);
            }
            p[s] = c.scale * dot;
            max = Math.max(max, p[s]);
          }
          double sum = 0;
          for (int s = seqStart[t]; s <= t; s++) {
            p[s] = Math.exp(p[s] - max);
            sum += p[s];
          }
          lse[t * c.heads + h] = max + Math.log(sum);
          double delta = 0;
          for (int s = seqStart[t]; s <= t; s++) {
            p[s] /= sum;
            for (int d = 0; d < c.dim; d++) {
              out[t * hd + h * c.dim + d] += p[s] * v.at(s, g, d);
            }
          }
          for (int d = 0; d < c.dim; d++) {
            delta += dout[t * hd + h * c.dim + d] * out[t * hd + h * c.dim + d];
          }
          for (int s = seqStart[t]; s <= t; s++) {
            double dp = 0;
            for (int d = 0; d < c.dim; d++) {
              dp += dout[t * hd + h * c.dim + d] * v.at(s, g, d);
            }
            double ds = p[s] * (dp - delta);
            for (int d = 0; d < c.dim; d++) {
              dq[t * hd + h * c.dim + d] += c.scale * ds * k.at(s, g, d);
              dk[s * kd + g * c.dim + d] += c.scale * ds * q.at(t, h, d);
              dv[s * kd + g * c.dim + d] += p[s] * dout[t * hd + h * c.dim + d];
            }
          }
        }
      }
    }

    Expected(Inputs in) {
      this(in.c, in.c.seqStart(), in::q, in::k, in::v, in.dout);
    }

    /** The loss Σ dout ⊙ out. */
    double loss(float[] dout) {
      double l = 0;
      for (int i = 0; i < out.length; i++) {
        l += dout[i] * out[i];
      }
      return l;
    }
  }

  @FunctionalInterface
  interface Lookup {
    double at(int t, int head, int d);
  }

  /** The outputs of one call, strided views of wider buffers, NaN-poisoned. */
  private static final class Outputs {
    final Tensor out, lse, dq, dk, dv;

    Outputs(TensorScope s, Case c, DType dtype) {
      out = s.allocate(c.tokens, c.heads * c.dim, c.heads * c.dim + 5, dtype);
      lse = s.allocate(c.tokens, c.heads + 2, DType.F32).colsView(1, c.heads);
      Tensor grads = s.allocate(c.tokens, c.width(), dtype); // dq|dk|dv fused, as a qkv projection's input gradient
      dq = grads.colsView(0, c.heads * c.dim);
      dk = grads.colsView(c.heads * c.dim, c.kvHeads * c.dim);
      dv = grads.colsView((c.heads + c.kvHeads) * c.dim, c.kvHeads * c.dim);
      poison();
    }

    void poison() {
      for (Tensor t : new Tensor[] {out, lse, dq, dk, dv}) {
        t.copyFrom(Reference.nans(t.rows() * t.cols()));
      }
    }
  }

  private static void forward(Backend backend, Inputs in, Outputs o) {
    Attention.forward(backend, in.q, in.k, in.v, in.seqStart, in.c.scale, in.c.heads, in.c.kvHeads, o.out, o.lse);
  }

  private static void backward(Backend backend, Inputs in, Outputs o) {
    Attention.backward(backend, in.q, in.k, in.v, in.seqStart, in.c.scale, in.c.heads, in.c.kvHeads, o.out, o.lse,
        in.doutTensor, o.dq, o.dk, o.dv);
  }

  /**
   * Relative error within tolerance; a reference that is exactly zero (a token alone in its
   * document has dq = dk = 0: its only probability is 1) takes the tolerance as absolute.
   */
  private static void assertClose(String what, float[] got, double[] expected, double tolerance) {
    boolean zero = Arrays.stream(expected).allMatch(x -> x == 0);
    double err = zero ? norm(got) : Reference.relativeError(got, expected);
    assertTrue(err <= tolerance, what + ": " + (zero ? "norm " : "relative error ") + err + " > " + tolerance);
  }

  private static double norm(float[] v) { // NaN for a NaN
    double sum = 0;
    for (float x : v) {
      sum += (double) x * x;
    }
    return Math.sqrt(sum);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void forwardMatchesFloat64Reference(String backendName) {
    SplittableRandom rng = new SplittableRandom(11);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (Case c : CASES) {
          Inputs in = new Inputs(s, c, dtype, rng);
          Outputs o = new Outputs(s, c, dtype);
          forward(backend, in, o);
          Expected e = new Expected(in);
          assertClose(dtype + " " + c + " out", o.out.toFloatArray(), e.out, Reference.tolerance(dtype));
          // the scores are formed in fp32 from the stored inputs whatever the dtype
          assertClose(dtype + " " + c + " lse", o.lse.toFloatArray(), e.lse, 1e-5);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void backwardMatchesFloat64Reference(String backendName) {
    SplittableRandom rng = new SplittableRandom(12);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (Case c : CASES) {
          Inputs in = new Inputs(s, c, dtype, rng);
          Outputs o = new Outputs(s, c, dtype);
          forward(backend, in, o);
          backward(backend, in, o);
          Expected e = new Expected(in);
          double tolerance = Reference.tolerance(dtype);
          assertClose(dtype + " " + c + " dq", o.dq.toFloatArray(), e.dq, tolerance);
          assertClose(dtype + " " + c + " dk", o.dk.toFloatArray(), e.dk, tolerance);
          assertClose(dtype + " " + c + " dv", o.dv.toFloatArray(), e.dv, tolerance);
        }
      }
    }
  }

  /** The gradients against central differences of the float64 loss Σ dout ⊙ out on a tiny case. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void backwardMatchesFiniteDifferences(String backendName) {
    Case c = new Case(6, 4, 2, 3, 0.9f, 0, 4);
    SplittableRandom rng = new SplittableRandom(13);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Inputs in = new Inputs(s, c, DType.F32, rng);
      Outputs o = new Outputs(s, c, DType.F32);
      forward(backend, in, o);
      backward(backend, in, o);
      double[] x = new double[in.fused.length];
      for (int i = 0; i < x.length; i++) {
        x[i] = in.fused[i];
      }
      double[] numeric = new double[x.length];
      double step = 1e-5;
      for (int i = 0; i < x.length; i++) {
        double keep = x[i];
        x[i] = keep + step;
        double up = loss(c, x, in.dout);
        x[i] = keep - step;
        double down = loss(c, x, in.dout);
        x[i] = keep;
        numeric[i] = (up - down) / (2 * step);
      }
      int w = c.width(), hd = c.heads * c.dim, kd = c.kvHeads * c.dim;
      double[] dq = new double[c.tokens * hd], dk = new double[c.tokens * kd], dv = new double[c.tokens * kd];
      for (int t = 0; t < c.tokens; t++) {
        for (int j = 0; j < hd; j++) {
          dq[t * hd + j] = numeric[t * w + j];
        }
        for (int j = 0; j < kd; j++) {
          dk[t * kd + j] = numeric[t * w + hd + j];
          dv[t * kd + j] = numeric[t * w + hd + kd + j];
        }
      }
      assertClose("dq", o.dq.toFloatArray(), dq, 1e-5);
      assertClose("dk", o.dk.toFloatArray(), dk, 1e-5);
      assertClose("dv", o.dv.toFloatArray(), dv, 1e-5);
    }
  }

  private static double loss(Case c, double[] x, float[] dout) {
    int w = c.width();
    Lookup q = (t, h, d) -> x[t * w + h * c.dim + d];
    Lookup k = (t, g, d) -> x[t * w + (c.heads + g) * c.dim + d];
    Lookup v = (t, g, d) -> x[t * w + (c.heads + c.kvHeads + g) * c.dim + d];
    return new Expected(c, c.seqStart(), q, k, v, dout).loss(dout);
  }

  /** Rewriting one document's tokens leaves every output of the other documents bit for bit. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void packedDocumentsAreIndependent(String backendName) {
    Case c = new Case(100, 4, 2, 20, 0.5f, 0, 37, 38);
    SplittableRandom rng = new SplittableRandom(14);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Inputs in = new Inputs(s, c, DType.BF16, rng);
      Outputs o = new Outputs(s, c, DType.BF16);
      forward(backend, in, o);
      backward(backend, in, o);
      float[][] before = {o.out.toFloatArray(), o.lse.toFloatArray(), o.dq.toFloatArray(), o.dk.toFloatArray(),
          o.dv.toFloatArray()};
      // the first document, rows 0..36: new q, k, v and dout
      float[] fused = in.fused.clone(), dout = in.dout.clone();
      System.arraycopy(Reference.random(rng, 37 * c.width(), DType.BF16), 0, fused, 0, 37 * c.width());
      System.arraycopy(Reference.random(rng, 37 * c.heads * c.dim, DType.BF16), 0, dout, 0, 37 * c.heads * c.dim);
      in.buffer.copyFrom(fused);
      in.doutTensor.copyFrom(dout);
      o.poison();
      forward(backend, in, o);
      backward(backend, in, o);
      float[][] after = {o.out.toFloatArray(), o.lse.toFloatArray(), o.dq.toFloatArray(), o.dk.toFloatArray(),
          o.dv.toFloatArray()};
      String[] names = {"out", "lse", "dq", "dk", "dv"};
      for (int i = 0; i < names.length; i++) {
        int cols = before[i].length / c.tokens, from = 37 * cols;
        float[] keptBefore = Arrays.copyOfRange(before[i], from, before[i].length);
        float[] keptAfter = Arrays.copyOfRange(after[i], from, after[i].length);
        assertArrayEquals(keptBefore, keptAfter, names[i] + " of rows 37.. changed with the first document");
        float[] firstBefore = Arrays.copyOfRange(before[i], 0, from);
        float[] firstAfter = Arrays.copyOfRange(after[i], 0, from);
        assertTrue(!Arrays.equals(firstBefore, firstAfter), names[i] + " of the first document unchanged");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void refusalsNameTheArgument(String backendName) {
    Case c = new Case(9, 4, 2, 8, 0.3f, 0, 5);
    SplittableRandom rng = new SplittableRandom(15);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Inputs in = new Inputs(s, c, DType.F32, rng);
      Outputs o = new Outputs(s, c, DType.F32);
      Class<IllegalArgumentException> iae = IllegalArgumentException.class;
      assertRefused(iae, () -> Attention.forward(backend, in.q, in.k.colsView(0, 8), in.v, in.seqStart, c.scale,
          c.heads, c.kvHeads, o.out, o.lse), "attention", "k", "[9,8]", "[9,16]");
      assertRefused(iae, () -> Attention.forward(backend, in.q, in.k, in.v, in.seqStart, c.scale, 4, 3, o.out,
          o.lse), "heads 4", "kvHeads 3");
      Tensor floatStarts = s.fromArray(new float[c.tokens], c.tokens, 1, DType.F32);
      assertRefused(iae, () -> Attention.forward(backend, in.q, in.k, in.v, floatStarts, c.scale, c.heads,
          c.kvHeads, o.out, o.lse), "seqStart", "F32", "I32");
      assertRefused(iae, () -> Attention.forward(backend, in.q, in.k, in.v, in.seqStart, Float.NaN, c.heads,
          c.kvHeads, o.out, o.lse), "scale");
      assertRefused(iae, () -> Attention.forward(backend, in.q, in.k, in.v, in.seqStart, c.scale, c.heads,
          c.kvHeads, in.buffer.colsView(1, c.heads * c.dim), o.lse), "out", "overlaps", "q");
      int[][] badStarts = {
          {0, 0, 0, 0, 0, 6, 5, 5, 5}, // ahead of its row
          {0, 0, 0, 0, 0, -1, 5, 5, 5}, // negative
          {1, 1, 1, 1, 1, 5, 5, 5, 5}, // row 0 in a document that starts later
          {0, 0, 0, 0, 0, 5, 5, 3, 5}, // back into an earlier document
      };
      for (int[] bad : badStarts) {
        Tensor starts = s.fromInts(bad, c.tokens, 1);
        assertRefused(iae, () -> Attention.forward(backend, in.q, in.k, in.v, starts, c.scale, c.heads, c.kvHeads,
            o.out, o.lse), "attention", "seqStart", "of 9 rows");
        assertAllNaN(o.out);
        assertAllNaN(o.lse);
        assertRefused(iae, () -> Attention.backward(backend, in.q, in.k, in.v, starts, c.scale, c.heads, c.kvHeads,
            o.out, o.lse, in.doutTensor, o.dq, o.dk, o.dv), "attentionBackward", "seqStart");
        assertAllNaN(o.dq);
        assertAllNaN(o.dk);
        assertAllNaN(o.dv);
      }
      assertRefused(iae, () -> Attention.backward(backend, in.q, in.k, in.v, in.seqStart, c.scale, c.heads,
          c.kvHeads, o.out, o.lse, in.doutTensor, o.dq, o.dv, o.dv), "dk", "overlaps", "dv");
      assertRefused(iae, () -> Attention.backward(backend, in.q, in.k, in.v, in.seqStart, c.scale, c.heads,
          c.kvHeads, o.out, o.lse, in.doutTensor, o.dq, o.dk, in.v), "dv", "overlaps");
      Tensor wide = s.allocate(c.tokens, 4 * 260, DType.F32);
      assertRefused(iae, () -> Attention.forward(backend, wide, in.k, in.v, in.seqStart, c.scale, 4, 2, o.out,
          o.lse), "head dimension in [1, 256]");
      assertAllNaN(o.out);
    }
  }
}
