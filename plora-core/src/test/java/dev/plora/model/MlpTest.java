package dev.plora.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.plora.backend.Backend;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.optim.Parameter;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Gradients of a whole MLP (linear layers, GELU, MSE) against central differences. */
class MlpTest {
  private static final int M = 6, IN = 7, HIDDEN = 9, OUT = 5;

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void fullFineTuningGradientsMatchFiniteDifferences(String backendName) {
    SplittableRandom rng = new SplittableRandom(11);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Linear l1 = new Linear(s.fromArray(Reference.random(rng, HIDDEN * IN, DType.F32), HIDDEN, IN, DType.F32),
          s.fromArray(Reference.random(rng, HIDDEN, DType.F32), 1, HIDDEN, DType.F32), true);
      Linear l2 = new Linear(s.fromArray(Reference.random(rng, OUT * HIDDEN, DType.F32), OUT, HIDDEN, DType.F32),
          s.fromArray(Reference.random(rng, OUT, DType.F32), 1, OUT, DType.F32), true);
      try (Mlp mlp = new Mlp(List.of(l1, l2))) {
        checkGradients(backend, s, mlp, rng);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void loraGradientsMatchFiniteDifferences(String backendName) {
    SplittableRandom rng = new SplittableRandom(12);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      LoraConfig config = LoraConfig.builder().r(3).alpha(6).build();
      LoraLinear l1 = LoraLinear.create(s.fromArray(Reference.random(rng, HIDDEN * IN, DType.F32), HIDDEN, IN,
          DType.F32), null, config, 0);
      LoraLinear l2 = LoraLinear.create(s.fromArray(Reference.random(rng, OUT * HIDDEN, DType.F32), OUT, HIDDEN,
          DType.F32), s.fromArray(Reference.random(rng, OUT, DType.F32), 1, OUT, DType.F32), config, 1);
      for (LoraLinear l : List.of(l1, l2)) {
        l.adapter().masterB().copyFrom(Reference.random(rng, l.outFeatures() * 3, DType.F32));
        l.adapter().sync();
      }
      try (Mlp mlp = new Mlp(List.of(l1, l2))) {
        checkGradients(backend, s, mlp, rng);
      }
    }
  }

  /** L = mse(mlp(x), t); each parameter's analytic gradient against (L(v+h) − L(v−h)) / 2h. */
  private static void checkGradients(Backend backend, TensorScope s, Mlp mlp, SplittableRandom rng) {
    Tensor x = s.fromArray(Reference.random(rng, M * IN, DType.F32), M, IN, DType.F32);
    Tensor t = s.fromArray(Reference.random(rng, M * OUT, DType.F32), M, OUT, DType.F32);
    Tensor dout = s.allocate(M, OUT, DType.F32);
    mlp.zeroGrad();
    backend.mse(mlp.forward(x), t, dout);
    mlp.backward(dout);
    double h = 1e-2;
    for (Parameter p : mlp.parameters()) {
      float[] grad = p.grad().toFloatArray();
      float[] value = p.value().toFloatArray();
      for (int idx : new int[] {0, value.length / 2, value.length - 1}) {
        float original = value[idx];
        double[] losses = new double[2];
        for (int side = 0; side < 2; side++) {
          value[idx] = (float) (original + (side == 0 ? h : -h));
          set(backend, p, value);
          losses[side] = backend.mse(mlp.forward(x), t, null);
        }
        value[idx] = original;
        set(backend, p, value);
        double numeric = (losses[0] - losses[1]) / (2 * h);
        assertEquals(numeric, grad[idx], 2e-3 * Math.max(1, Math.abs(numeric)), p.name() + "[" + idx + "]");
      }
    }
  }

  /** Writes a parameter's value and refreshes its compute copy, as the optimizer would. */
  private static void set(Backend backend, Parameter p, float[] value) {
    p.value().copyFrom(value);
    if (p.computeCopy() != null) {
      backend.copy(p.value(), p.computeCopy());
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void mismatchedLayersAndInputsAreRefused(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Linear a = new Linear(s.allocate(4, 3, DType.F32).fill(1f), null, false);
      Linear b = new Linear(s.allocate(2, 5, DType.F32).fill(1f), null, false);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Mlp(List.of(a, b)));
      assertEquals(true, e.getMessage().contains("4 outputs") && e.getMessage().contains("5 inputs"), e.getMessage());
      try (Mlp mlp = new Mlp(List.of(a))) {
        assertThrows(IllegalArgumentException.class, () -> mlp.forward(s.allocate(2, 4, DType.F32)));
        assertThrows(IllegalArgumentException.class, () -> mlp.backward(s.allocate(2, 4, DType.F32)));
      }
      b.close();
    }
  }
}
