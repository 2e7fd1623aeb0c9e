package dev.plora.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraAdapter;
import dev.plora.lora.LoraConfig;
import dev.plora.optim.Parameter;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The Llama-family building blocks as modules: wiring, gradients and names, against float64. */
class TransformerModulesTest {
  private static final int M = 7, H = 12, I = 20;
  private final SplittableRandom rng = new SplittableRandom(81);

  private float[] random(int n, double scale) {
    float[] v = Reference.random(rng, n, DType.F32);
    for (int i = 0; i < n; i++) {
      v[i] *= (float) scale;
    }
    return v;
  }

  /** y[M,N] = x[M,K]·w[N,K]ᵀ in float64. */
  private static double[] matmulT(double[] x, float[] w, int m, int k, int n) {
    double[] y = new double[m * n];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int t = 0; t < k; t++) {
          s += x[i * k + t] * w[j * k + t];
        }
        y[i * n + j] = s;
      }
    }
    return y;
  }

  private static double[] widen(float[] v) {
    double[] d = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      d[i] = v[i];
    }
    return d;
  }

  @Test
  void gatedMlpForwardAndGradientsMatchFloat64() {
    float[] wg = random(I * H, 0.4), wu = random(I * H, 0.4), wd = random(H * I, 0.3);
    float[] x = random(M * H, 1), dout = random(M * H, 1);
    try (Backend backend = Backends.create("cpu"); TensorScope s = new TensorScope(backend);
        GatedMlp mlp = new GatedMlp(new Linear(s.fromArray(wg, I, H, DType.F32), null, true),
            new Linear(s.fromArray(wu, I, H, DType.F32), null, true),
            new Linear(s.fromArray(wd, H, I, DType.F32), null, true))) {
      Tensor xt = s.fromArray(x, M, H, DType.F32), out = s.fromArray(Reference.nans(M * H), M, H, DType.F32);
      mlp.forward(xt, out);
      Tensor dx = s.fromArray(Reference.nans(M * H), M, H, DType.F32);
      mlp.backward(s.fromArray(dout, M, H, DType.F32), dx);

      // float64: g = x·Wgᵀ, u = x·Wuᵀ, h = silu(g)·u, out = h·Wdᵀ and back
      double[] g = matmulT(widen(x), wg, M, H, I), u = matmulT(widen(x), wu, M, H, I), h = new double[M * I];
      for (int e = 0; e < h.length; e++) {
        h[e] = g[e] / (1 + Math.exp(-g[e])) * u[e];
      }
      double[] outRef = matmulT(h, wd, M, I, H);
      assertTrue(Reference.relativeError(out.toFloatArray(), outRef) <= 1e-5, "out");
      double[] dh = new double[M * I], dg = new double[M * I], du = new double[M * I];
      double[] dWd = new double[H * I], dWg = new double[I * H], dWu = new double[I * H], dxRef = new double[M * H];
      for (int i = 0; i < M; i++) {
        for (int j = 0; j < I; j++) {
          for (int c = 0; c < H; c++) {
            dh[i * I + j] += dout[i * H + c] * wd[c * I + j];
            dWd[c * I + j] += dout[i * H + c] * h[i * I + j];
          }
          double gv = g[i * I + j], sig = 1 / (1 + Math.exp(-gv));
          dg[i * I + j] = dh[i * I + j] * u[i * I + j] * sig * (1 + gv * (1 - sig));
          du[i * I + j] = dh[i * I + j] * gv * sig;
          for (int c = 0; c < H; c++) {
            dWg[j * H + c] += dg[i * I + j] * x[i * H + c];
            dWu[j * H + c] += du[i * I + j] * x[i * H + c];
            dxRef[i * H + c] += dg[i * I + j] * wg[j * H + c] + du[i * I + j] * wu[j * H + c];
          }
        }
      }
      assertTrue(Reference.relativeError(dx.toFloatArray(), dxRef) <= 1e-5, "dx: gate_proj's and up_proj's shares");
      Map<String, double[]> want = Map.of("gate_proj", dWg, "up_proj", dWu, "down_proj", dWd);
      for (String name : want.keySet()) {
        Parameter p = mlp.module(name).parameters().get(0);
        assertTrue(Reference.relativeError(p.grad().toFloatArray(), want.get(name)) <= 1e-5, name + " gradient");
      }
    }
  }

  @Test
  void loraTargetsTheMlpsProjectionsByName() {
    try (Backend backend = Backends.create("cpu"); TensorScope s = new TensorScope(backend);
        GatedMlp mlp = new GatedMlp(new Linear(s.fromArray(random(I * H, 0.4), I, H, DType.F32), null, false),
            new Linear(s.fromArray(random(I * H, 0.4), I, H, DType.F32), null, false),
            new Linear(s.fromArray(random(H * I, 0.3), H, I, DType.F32), null, false))) {
      Map<String, LoraAdapter> adapters = Lora.inject(mlp, LoraConfig.builder().r(4).alpha(8)
          .targetModules("gate_proj", "down_proj").build());
      assertEquals(List.of("gate_proj", "down_proj"), List.copyOf(adapters.keySet()));
      // B = 0 at first: the adapted MLP computes what the frozen one does, and trains A and B only
      Tensor x = s.fromArray(random(M * H, 1), M, H, DType.F32), out = s.allocate(M, H, DType.F32);
      mlp.forward(x, out);
      mlp.backward(s.fromArray(random(M * H, 1), M, H, DType.F32), s.allocate(M, H, DType.F32));
      assertEquals(4, mlp.parameters().size(), "A and B of two adapters");
      for (LoraAdapter a : adapters.values()) {
        float[] gb = a.gradB().toFloatArray();
        double norm = 0;
        for (float v : gb) {
          norm += v * v;
        }
        assertTrue(norm > 0, "B's gradient is not zero");
      }
    }
  }

  @Test
  void rmsNormLayerAndEmbeddingTrainTheirWeights() {
    try (Backend backend = Backends.create("cpu"); TensorScope s = new TensorScope(backend);
        RmsNormLayer norm = new RmsNormLayer(s.fromArray(random(H, 1), 1, H, DType.F32), 1e-6f, true);
        TokenEmbedding embed = new TokenEmbedding(s.fromArray(random(10 * H, 1), 10, H, DType.BF16), true)) {
      Tensor ids = s.fromInts(new int[] {3, 1, 3, 9, 0, 3, 2}, M, 1);
      Tensor h = s.allocate(M, H, DType.BF16), y = s.allocate(M, H, DType.F32);
      embed.forward(ids, h);
      Tensor hf = s.allocate(M, H, DType.F32);
      backend.copy(h, hf);
      norm.forward(hf, y);
      Tensor dy = s.fromArray(random(M * H, 1), M, H, DType.F32), dx = s.allocate(M, H, DType.F32);
      norm.backward(dy, dx);
      Tensor dxb = s.allocate(M, H, DType.BF16);
      backend.copy(dx, dxb);
      embed.backward(dxb);
      Parameter table = embed.parameters().get(0);
      assertEquals(DType.F32, table.value().dtype(), "a BF16 table trains through an fp32 master");
      float[] grad = table.grad().toFloatArray(), dxv = dxb.toFloatArray();
      for (int c = 0; c < H; c++) {
        assertEquals(dxv[0 * H + c] + dxv[2 * H + c] + dxv[5 * H + c], grad[3 * H + c], 1e-6, "row of id 3");
        assertEquals(0f, grad[4 * H + c], "an id no token has");
      }
      assertEquals(1, norm.parameters().size());
      assertThrows(IllegalArgumentException.class, () -> new RmsNormLayer(s.allocate(2, H, DType.F32), 1e-6f, false));
      assertThrows(IllegalArgumentException.class,
          () -> new RmsNormLayer(s.allocate(1, H, DType.F32), Float.NaN, false));
    }
  }
}
