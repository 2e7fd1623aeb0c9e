package dev.plora.plora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Rounding;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The unloading policies on a LoRA layer with a trained-looking (random) adapter. */
class UnloadTest {
  private static final int N = 24, K = 40, R = 4, M = 10;

  private static LoraLinear layer(TensorScope s, SplittableRandom rng) {
    Tensor w = s.fromArray(Reference.random(rng, N * K, DType.F32), N, K, DType.F32);
    LoraLinear layer = LoraLinear.create(w, null, LoraConfig.builder().r(R).alpha(8).seed(3).build(), 1);
    layer.adapter().masterB().copyFrom(Reference.random(rng, N * R, DType.F32));
    layer.adapter().sync();
    return layer;
  }

  private static float[] output(LoraLinear layer, Tensor x) {
    try (Tensor y = layer.forward(x)) {
      return y.toFloatArray();
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void fullUnloadKeepsTheOutputAndStartsAFreshAdapter(String backendName) {
    SplittableRandom rng = new SplittableRandom(1);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend);
        LoraLinear layer = layer(s, rng)) {
      Tensor x = s.fromArray(Reference.random(rng, M * K, DType.F32), M, K, DType.F32);
      float[] before = output(layer, x);
      float[] a0 = layer.adapter().masterA().toFloatArray();
      new Unloader(PeriodicLoraConfig.full(10)).unload(List.of(layer.adapter()), null);
      float[] after = output(layer, x);
      assertTrue(Reference.relativeError(after, toDouble(before)) <= 1e-5, "output changed by a FULL unload");
      for (float b : layer.adapter().masterB().toFloatArray()) {
        assertEquals(0f, b);
      }
      float[] a1 = layer.adapter().masterA().toFloatArray();
      assertFalse(java.util.Arrays.equals(a0, a1), "A is re-initialised");
      float bound = (float) (1 / Math.sqrt(K));
      for (float a : a1) {
        assertTrue(Math.abs(a) <= bound, "fresh A outside the Kaiming bound");
      }
      assertArrayEquals(a1, layer.adapter().loraA().toFloatArray(), "compute copy synced");
      assertEquals(1, layer.adapter().unloads());
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void momentumUnloadMatchesItsFormula(String backendName) {
    SplittableRandom rng = new SplittableRandom(2);
    float m = 0.1f;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend);
        LoraLinear layer = layer(s, rng)) {
      float[] w0 = layer.weight().toFloatArray();
      float[] a0 = layer.adapter().masterA().toFloatArray();
      float[] b0 = layer.adapter().masterB().toFloatArray();
      new Unloader(PeriodicLoraConfig.momentum(1, m)).unload(List.of(layer.adapter()), null);
      float[] w1 = layer.weight().toFloatArray();
      double[] expected = Reference.gemm(false, b0, R, false, a0, K, m * layer.scaling(), 1, w0, N, K, R);
      assertTrue(Reference.relativeError(w1, expected) <= 1e-6, "W ← W + m·s·B·A");
      float[] a1 = layer.adapter().masterA().toFloatArray(), b1 = layer.adapter().masterB().toFloatArray();
      for (int i = 0; i < a0.length; i++) {
        assertEquals((1f - m) * a0[i], a1[i], "A ← (1−m)·A exactly");
      }
      for (int i = 0; i < b0.length; i++) {
        assertEquals((1f - m) * b0[i], b1[i], "B ← (1−m)·B exactly");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void preserveOutputKeepsTheFunction(String backendName) {
    SplittableRandom rng = new SplittableRandom(3);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend);
        LoraLinear layer = layer(s, rng)) {
      Tensor x = s.fromArray(Reference.random(rng, M * K, DType.F32), M, K, DType.F32);
      float[] before = output(layer, x);
      PeriodicLoraConfig config = new PeriodicLoraConfig(1, UnloadPolicy.momentum(0.3f, true),
          OptimizerStatePolicy.keep(), null);
      new Unloader(config).unload(List.of(layer.adapter()), null);
      assertTrue(Reference.relativeError(output(layer, x), toDouble(before)) <= 1e-5);
      float[] a = layer.adapter().masterA().toFloatArray();
      new Unloader(PeriodicLoraConfig.momentum(1, 0.3f)).unload(List.of(layer.adapter()), null);
      assertFalse(Reference.relativeError(output(layer, x), toDouble(before)) <= 1e-5,
          "without preserveOutput the published rule changes the output");
      assertEquals((float) (1 - 0.3) * a[0], layer.adapter().masterA().toFloatArray()[0]);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void bf16UnloadRoundsStochasticallyByDefault(String backendName) {
    SplittableRandom rng = new SplittableRandom(4);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor w = s.allocate(N, K, DType.BF16).fill(1f);
      try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.builder().r(R).alpha(R).build(), 0)) {
        layer.adapter().masterB().fill(1f / (64 * R)); // s·B·A per element ≈ ±1/64 · |A|: far below a bf16 step at 1
        layer.adapter().sync();
        float[] a = layer.adapter().masterA().toFloatArray();
        // Each element's update u is far below the bf16 spacing at 1 (2^-7 above, 2^-8 below):
        // nearest rounding would drop them all; stochastic rounding keeps the sum in expectation.
        double exactChange = 0, variance = 0;
        for (int t = 0; t < K; t++) {
          double u = 0;
          for (int j = 0; j < R; j++) {
            u += a[j * K + t] / (64.0 * R);
          }
          double step = u > 0 ? 0x1p-7 : 0x1p-8;
          double p = Math.abs(u) / step;
          exactChange += N * u;
          variance += N * step * step * p * (1 - p);
        }
        new Unloader(PeriodicLoraConfig.momentum(1, 1f)).unload(List.of(layer.adapter()), null);
        double change = 0;
        for (float v : layer.weight().toFloatArray()) {
          change += v - 1.0;
        }
        assertTrue(change != 0, "the update was rounded away");
        assertTrue(Math.abs(change - exactChange) <= 4 * Math.sqrt(variance),
            "stochastic rounding keeps the total update: " + change + " vs " + exactChange + " (4σ = "
                + 4 * Math.sqrt(variance) + ")");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void unloadingAMergedLayerIsRefused(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend);
        LoraLinear layer = layer(s, new SplittableRandom(5))) {
      layer.merge();
      assertThrows(IllegalStateException.class, () -> layer.adapter().unloadFull(Rounding.NEAREST));
    }
  }

  private static double[] toDouble(float[] v) {
    double[] d = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      d[i] = v[i];
    }
    return d;
  }
}
