package dev.plora.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.optim.Parameter;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The attention module (projections, Qwen3's head norms, RoPE, causal GQA over two packed
 * documents, output projection) against a float64 reference: its output, and its input and norm
 * gradients against central differences of that reference.
 */
class SelfAttentionTest {
  private static final int T = 9, H = 10, HEADS = 4, KV = 2, D = 6;
  private static final int[] POSITIONS = {0, 1, 2, 3, 4, 0, 1, 2, 3}, STARTS = {0, 0, 0, 0, 0, 5, 5, 5, 5};
  private static final double EPS = 1e-6;

  private final SplittableRandom rng = new SplittableRandom(91);
  private final float[] wq = random(HEADS * D * H, 0.5), wk = random(KV * D * H, 0.5), wv = random(KV * D * H, 0.5);
  private final float[] wo = random(H * HEADS * D, 0.4), qn = random(D, 1.5), kn = random(D, 1.5);
  private final float[] inv = {1f, 0.3f, 0.01f};

  private float[] random(int n, double scale) {
    float[] v = Reference.random(rng, n, DType.F32);
    for (int i = 0; i < n; i++) {
      v[i] *= (float) scale;
    }
    return v;
  }

  /** The module's output in float64, for x [T, H]. */
  double[] reference(double[] x, boolean norms, float[] qNorm) {
    double[] q = project(x, wq, HEADS * D), k = project(x, wk, KV * D), v = project(x, wv, KV * D);
    if (norms) {
      normHeads(q, HEADS, qNorm);
      normHeads(k, KV, kn);
    }
    rope(q, HEADS);
    rope(k, KV);
    double[] attn = new double[T * HEADS * D];
    for (int t = 0; t < T; t++) {
      for (int h = 0; h < HEADS; h++) {
        int g = h / (HEADS / KV);
        double[] p = new double[t + 1];
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int s = STARTS[t]; s <= t; s++) {
          double dot = 0;
          for (int d = 0; d < D; d++) {
            dot += q[t * HEADS * D + h * D + d] * k[s * KV * D + g * D + d];
          }
          p[s] = dot / Math.sqrt(D);
          max = Math.max(max, p[s]);
        }
        for (int s = STARTS[t]; s <= t; s++) {
          p[s] = Math.exp(p[s] - max);
          sum += p[s];
        }
        for (int s = STARTS[t]; s <= t; s++) {
          for (int d = 0; d < D; d++) {
            attn[t * HEADS * D + h * D + d] += p[s] / sum * v[s * KV * D + g * D + d];
          }
        }
      }
    }
    double[] out = new double[T * H];
    for (int t = 0; t < T; t++) {
      for (int j = 0; j < H; j++) {
        for (int c = 0; c < HEADS * D; c++) {
          out[t * H + j] += attn[t * HEADS * D + c] * wo[j * HEADS * D + c];
        }
      }
    }
    return out;
  }

  private static double[] project(double[] x, float[] w, int n) {
    double[] y = new double[T * n];
    for (int t = 0; t < T; t++) {
      for (int j = 0; j < n; j++) {
        for (int c = 0; c < H; c++) {
          y[t * n + j] += x[t * H + c] * w[j * H + c];
        }
      }
    }
    return y;
  }

  private static void normHeads(double[] a, int heads, float[] w) {
    for (int r = 0; r < T * heads; r++) {
      double ss = 0;
      for (int d = 0; d < D; d++) {
        ss += a[r * D + d] * a[r * D + d];
      }
      double rstd = 1 / Math.sqrt(ss / D + EPS);
      for (int d = 0; d < D; d++) {
        a[r * D + d] *= rstd * w[d];
      }
    }
  }

  private void rope(double[] a, int heads) {
    for (int t = 0; t < T; t++) {
      for (int h = 0; h < heads; h++) {
        for (int j = 0; j < D / 2; j++) {
          float angle = POSITIONS[t] * inv[j];
          double c = Math.cos(angle), s = Math.sin(angle);
          int i1 = t * heads * D + h * D + j, i2 = i1 + D / 2;
          double x1 = a[i1], x2 = a[i2];
          a[i1] = x1 * c - x2 * s;
          a[i2] = x2 * c + x1 * s;
        }
      }
    }
  }

  private double loss(double[] x, float[] dout, boolean norms, float[] qNorm) {
    double[] out = reference(x, norms, qNorm);
    double l = 0;
    for (int i = 0; i < out.length; i++) {
      l += dout[i] * out[i];
    }
    return l;
  }

  @ParameterizedTest(name = "q/k norms {0}")
  @ValueSource(booleans = {false, true})
  void outputAndGradientsMatchTheFloat64Model(boolean norms) {
    float[] x = random(T * H, 1), dout = random(T * H, 1);
    try (Backend backend = Backends.create("cpu"); TensorScope s = new TensorScope(backend);
        SelfAttention attention = new SelfAttention(linear(s, wq, HEADS * D, H), linear(s, wk, KV * D, H),
            linear(s, wv, KV * D, H), linear(s, wo, H, HEADS * D),
            norms ? new RmsNormLayer(s.fromArray(qn, 1, D, DType.F32), (float) EPS, true, HEADS) : null,
            norms ? new RmsNormLayer(s.fromArray(kn, 1, D, DType.F32), (float) EPS, false, KV) : null, HEADS, KV, D,
            s.fromArray(inv, 1, D / 2, DType.F32))) {
      Tensor out = s.fromArray(Reference.nans(T * H), T, H, DType.F32), dx = s.fromArray(Reference.nans(T * H), T, H,
          DType.F32);
      attention.forward(s.fromArray(x, T, H, DType.F32), s.fromInts(POSITIONS, T, 1), s.fromInts(STARTS, T, 1), out);
      attention.backward(s.fromArray(dout, T, H, DType.F32), dx);

      double[] xd = new double[x.length];
      for (int i = 0; i < x.length; i++) {
        xd[i] = x[i];
      }
      assertTrue(Reference.relativeError(out.toFloatArray(), reference(xd, norms, qn)) <= 1e-5, "out");
      double h = 1e-5;
      double[] fd = new double[x.length];
      for (int i = 0; i < x.length; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double up = loss(xd, dout, norms, qn);
        xd[i] = keep - h;
        fd[i] = (up - loss(xd, dout, norms, qn)) / (2 * h);
        xd[i] = keep;
      }
      assertTrue(Reference.relativeError(dx.toFloatArray(), fd) <= 1e-4, "dx against central differences");
      if (norms) {
        Parameter w = attention.module(SelfAttention.Q_NORM).parameters().get(0);
        float[] grad = w.grad().toFloatArray();
        for (int d = 0; d < D; d++) {
          float[] plus = qn.clone(), minus = qn.clone();
          plus[d] += (float) 1e-3;
          minus[d] -= (float) 1e-3;
          double want = (loss(xd, dout, true, plus) - loss(xd, dout, true, minus)) / ((double) plus[d] - minus[d]);
          assertEquals(want, grad[d], 1e-4 * Math.max(1, Math.abs(want)), "q_norm weight gradient " + d);
        }
      }
    }
  }

  private static Linear linear(TensorScope s, float[] w, int out, int in) {
    return new Linear(s.fromArray(w, out, in, DType.F32), null, false);
  }
}
