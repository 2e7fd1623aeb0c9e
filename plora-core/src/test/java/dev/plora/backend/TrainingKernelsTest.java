package dev.plora.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Merge, AdamW and the model ops against Java references, on every backend. */
class TrainingKernelsTest {
  /**
   * Round to nearest: the kernel sums (c·b[i,j])·a[j,t] over j in order with fused multiply-adds
   * and adds the sum to w once; this replays that in Java and must agree bit for bit.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void nearestMergeMatchesJavaBitForBit(String backendName) {
    SplittableRandom rng = new SplittableRandom(3);
    int n = 13, k = 37, r = 5;
    float c = 0.75f;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType wType : BackendCases.floatDtypes()) {
        float[] w = Reference.random(rng, n * k, wType);
        float[] b = Reference.random(rng, n * r, DType.F32);
        float[] a = Reference.random(rng, r * k, DType.F32);
        Tensor wt = s.allocate(n, k + 3, wType).view(0, 1, n, k).copyFrom(w);
        Tensor bt = s.fromArray(b, n, r, DType.F32);
        Tensor at = s.fromArray(a, r, k, DType.F32);
        backend.merge(wt, bt, at, c, Rounding.NEAREST, 1, 2, 1f, 1f);
        float[] got = wt.toFloatArray();
        for (int i = 0; i < n; i++) {
          for (int t = 0; t < k; t++) {
            float update = 0f;
            for (int j = 0; j < r; j++) {
              update = Math.fma(c * b[i * r + j], a[j * k + t], update);
            }
            float expected = wType.round(w[i * k + t] + update);
            assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(got[i * k + t]),
                wType + " w[" + i + "," + t + "]");
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void stochasticMergeIsUnbiasedAndDeterministic(String backendName) {
    int k = 256;
    float delta = 1f / 1024; // 1 + 2^-10 lies between the bf16 neighbours 1 and 1 + 2^-7
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor a = s.allocate(1, k, DType.F32).fill(1f);
      Tensor b = s.allocate(1, 1, DType.F32).fill(delta);
      Tensor w = s.allocate(1, k, DType.BF16);
      double sum = 0;
      int seeds = 200;
      float[] first = null;
      for (int seed = 0; seed < seeds; seed++) {
        w.fill(1f);
        backend.merge(w, b, a, 1f, Rounding.STOCHASTIC, seed, 5, 1f, 1f);
        float[] v = w.toFloatArray();
        for (float x : v) {
          assertTrue(x == 1f || x == 1.0078125f, "not a bf16 neighbour: " + x);
          sum += x;
        }
        if (seed == 0) {
          first = v;
        }
      }
      double p = delta / 0.0078125; // probability of rounding up
      double n = (double) seeds * k;
      double sigma = 0.0078125 * Math.sqrt(p * (1 - p) / n);
      double mean = sum / n;
      assertTrue(Math.abs(mean - (1 + delta)) <= 4 * sigma, "mean " + mean + " vs " + (1 + delta) + ", 4σ " + 4 * sigma);
      w.fill(1f);
      backend.merge(w, b, a, 1f, Rounding.STOCHASTIC, 0, 5, 1f, 1f);
      assertArrayEquals(first, w.toFloatArray(), "one seed, one result");
      w.fill(1f);
      backend.merge(w, b, a, 1f, Rounding.NEAREST, 0, 5, 1f, 1f);
      for (float x : w.toFloatArray()) {
        assertEquals(1f, x, "round to nearest loses the update: the reason for stochastic rounding");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void mergeScalesTheAdapterInTheSameCall(String backendName) {
    SplittableRandom rng = new SplittableRandom(4);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      float[] a = Reference.random(rng, 3 * 8, DType.F32);
      float[] b = Reference.random(rng, 6 * 3, DType.F32);
      Tensor w = s.allocate(6, 8, DType.F32).fill(0f);
      Tensor at = s.fromArray(a, 3, 8, DType.F32);
      Tensor bt = s.fromArray(b, 6, 3, DType.F32);
      backend.merge(w, bt, at, 1f, Rounding.NEAREST, 0, 0, 0.9f, 0.5f);
      float[] a2 = at.toFloatArray(), b2 = bt.toFloatArray();
      for (int i = 0; i < a.length; i++) {
        assertEquals(0.9f * a[i], a2[i]);
      }
      for (int i = 0; i < b.length; i++) {
        assertEquals(0.5f * b[i], b2[i]);
      }
      double[] ref = Reference.gemm(false, b, 3, false, a, 8, 1, 0, null, 6, 8, 3);
      assertTrue(Reference.relativeError(w.toFloatArray(), ref) <= 1e-6, "w used the unscaled adapter");
      Tensor f16 = s.allocate(6, 8, DType.F16);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> backend.merge(f16, bt, at, 1f, Rounding.STOCHASTIC, 0, 0, 1f, 1f));
      assertTrue(e.getMessage().contains("F16"), e.getMessage());
    }
  }

  /** 100 steps of fused AdamW on three tensors against PyTorch's formula in float64. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void adamwMatchesFloat64Reference(String backendName) {
    SplittableRandom rng = new SplittableRandom(5);
    int[][] shapes = {{4, 9}, {1, 1}, {7, 3}};
    float[] lrScales = {1f, 1f, 16f};
    float b1 = 0.9f, b2 = 0.99f, eps = 1e-8f, wd = 0.05f;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      int count = shapes.length;
      Tensor[] p = new Tensor[count], g = new Tensor[count], m = new Tensor[count], v = new Tensor[count];
      double[][] pr = new double[count][], mr = new double[count][], vr = new double[count][];
      Tensor copyParent = s.allocate(7, 5, DType.BF16);
      for (int i = 0; i < count; i++) {
        int n = shapes[i][0] * shapes[i][1];
        float[] init = Reference.random(rng, n, DType.F32);
        p[i] = s.fromArray(init, shapes[i][0], shapes[i][1], DType.F32);
        g[i] = s.allocate(shapes[i][0], shapes[i][1], DType.F32);
        m[i] = s.allocate(shapes[i][0], shapes[i][1], DType.F32).fill(0f);
        v[i] = s.allocate(shapes[i][0], shapes[i][1], DType.F32).fill(0f);
        pr[i] = new double[n];
        for (int e = 0; e < n; e++) {
          pr[i][e] = init[e];
        }
        mr[i] = new double[n];
        vr[i] = new double[n];
      }
      Tensor copy = copyParent.view(0, 1, 7, 3);
      for (int step = 1; step <= 100; step++) {
        float lr = 1e-2f * (1 + step % 3);
        float gs = step % 2 == 0 ? 0.5f : 1f;
        List<AdamwSlot> slots = new java.util.ArrayList<>();
        float[][] grads = new float[count][];
        for (int i = 0; i < count; i++) {
          grads[i] = Reference.random(rng, pr[i].length, DType.F32);
          g[i].copyFrom(grads[i]);
          slots.add(new AdamwSlot(p[i], g[i], m[i], v[i], i == 2 ? copy : null, lrScales[i]));
        }
        double bc1 = 1 - Math.pow(b1, step), bc2 = 1 - Math.pow(b2, step);
        backend.adamw(slots, new AdamwHyper(lr, b1, b2, eps, wd, gs, (float) bc1, (float) bc2));
        for (int i = 0; i < count; i++) {
          double lri = (double) lr * lrScales[i];
          for (int e = 0; e < pr[i].length; e++) {
            double ge = (double) grads[i][e] * gs;
            mr[i][e] = b1 * mr[i][e] + (1 - b1) * ge;
            vr[i][e] = b2 * vr[i][e] + (1 - b2) * ge * ge;
            pr[i][e] = pr[i][e] * (1 - lri * wd) - lri / bc1 * mr[i][e] / (Math.sqrt(vr[i][e] / bc2) + eps);
          }
        }
      }
      for (int i = 0; i < count; i++) {
        double err = Reference.relativeError(p[i].toFloatArray(), pr[i]);
        assertTrue(err <= 1e-5, "tensor " + i + ": relative error " + err);
      }
      float[] master = p[2].toFloatArray(), bf16 = copy.toFloatArray();
      for (int e = 0; e < master.length; e++) {
        assertEquals(DType.BF16.round(master[e]), bf16[e], "the bf16 copy is the rounded master");
      }
    }
  }

  /** Many tensors in one call: float64 over all of them; on the CPU bit for bit the singles' sum. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void sumOfSquaresOfManyTensors(String backendName) {
    SplittableRandom rng = new SplittableRandom(16);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      int[][] shapes = {{37, 129}, {5, 17}, {1, 9}, {3, 1}};
      DType[] types = {DType.F32, DType.BF16, DType.F32, DType.F16};
      List<Tensor> xs = new java.util.ArrayList<>();
      double want = 0, singles = 0;
      for (int t = 0; t < shapes.length; t++) {
        int rows = shapes[t][0], cols = shapes[t][1];
        float[] v = Reference.random(rng, rows * cols, types[t]);
        Tensor x = s.allocate(rows, cols + 3, types[t]).fill(Float.NaN).view(0, 0, rows, cols).copyFrom(v);
        xs.add(x);
        for (float f : v) {
          want += (double) f * f;
        }
        singles += backend.sumSquares(x);
      }
      double got = backend.sumSquares(xs);
      assertEquals(want, got, 1e-9 * want, "against float64 (the padding holds NaN and must not count)");
      if (backendName.equals("cpu")) {
        assertEquals(singles, got, 0.0, "tensor by tensor in order: the singles' sum, bit for bit");
      }
      assertEquals(0.0, backend.sumSquares(List.of()));
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void modelOpsMatchReferences(String backendName) {
    SplittableRandom rng = new SplittableRandom(6);
    int rows = 9, cols = 13;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      float[] x = Reference.random(rng, rows * cols, DType.F32);
      float[] t = Reference.random(rng, rows * cols, DType.F32);
      Tensor xt = s.fromArray(x, rows, cols, DType.F32);
      Tensor tt = s.fromArray(t, rows, cols, DType.F32);
      double sq = 0, mse = 0;
      for (int i = 0; i < x.length; i++) {
        sq += (double) x[i] * x[i];
        mse += Math.pow((double) x[i] - t[i], 2) / x.length;
      }
      assertEquals(sq, backend.sumSquares(xt), 1e-9 * sq);
      Tensor dpred = s.allocate(rows, cols, DType.F32).fill(Float.NaN);
      assertEquals(mse, backend.mse(xt, tt, dpred), 1e-6 * mse);
      float[] dp = dpred.toFloatArray();
      for (int i = 0; i < x.length; i++) {
        assertEquals(2.0 * (x[i] - t[i]) / x.length, dp[i], 1e-7);
      }
      Tensor y = s.allocate(rows, cols, DType.F32).fill(Float.NaN);
      backend.gelu(xt, y);
      Tensor ones = s.allocate(rows, cols, DType.F32).fill(1f);
      Tensor dx = s.allocate(rows, cols, DType.F32).fill(Float.NaN);
      backend.geluBackward(xt, ones, dx);
      float[] yv = y.toFloatArray(), dv = dx.toFloatArray();
      for (int i = 0; i < x.length; i++) {
        assertEquals(gelu(x[i]), yv[i], 1e-6, "gelu(" + x[i] + ")");
        assertEquals((gelu(x[i] + 1e-3) - gelu(x[i] - 1e-3)) / 2e-3, dv[i], 1e-4, "gelu'(" + x[i] + ")");
      }
      float[] labels = new float[rows];
      for (int i = 0; i < rows; i++) {
        labels[i] = (i * 5) % cols;
      }
      Tensor lt = s.fromArray(labels, rows, 1, DType.F32);
      Tensor dl = s.allocate(rows, cols, DType.F32).fill(Float.NaN);
      double loss = backend.softmaxCrossEntropy(xt, lt, dl);
      double ref = 0;
      float[] dlv = dl.toFloatArray();
      for (int i = 0; i < rows; i++) {
        double se = 0;
        for (int j = 0; j < cols; j++) {
          se += Math.exp(x[i * cols + j]);
        }
        ref += (Math.log(se) - x[i * cols + (int) labels[i]]) / rows;
        for (int j = 0; j < cols; j++) {
          double expected = (Math.exp(x[i * cols + j]) / se - (j == labels[i] ? 1 : 0)) / rows;
          assertEquals(expected, dlv[i * cols + j], 1e-7);
        }
      }
      assertEquals(ref, loss, 1e-6 * ref);
      labels[3] = cols;
      labels[5] = 1.5f;
      Tensor bad = s.fromArray(labels, rows, 1, DType.F32);
      dl.fill(Float.NaN);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> backend.softmaxCrossEntropy(xt, bad, dl));
      assertTrue(e.getMessage().contains("2 of 9"), e.getMessage());
      for (float f : dl.toFloatArray()) {
        assertTrue(Float.isNaN(f), "dlogits written despite bad labels");
      }
    }
  }

  private static double gelu(double x) {
    return x * 0.5 * (1 + erf(x / Math.sqrt(2)));
  }

  /** erf to ~1e-7 (Abramowitz–Stegun 7.1.26 is too coarse; this is the series/continued fraction). */
  private static double erf(double x) {
    double t = Math.abs(x);
    double sum = t, term = t, t2 = t * t;
    for (int n = 1; n < 60; n++) {
      term *= -t2 / n;
      sum += term / (2 * n + 1);
    }
    double result = 2 / Math.sqrt(Math.PI) * sum;
    return x < 0 ? -result : result;
  }
}
