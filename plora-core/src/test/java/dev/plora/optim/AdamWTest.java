package dev.plora.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class AdamWTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void pruneKeepsExactlyTheRequestedFraction(String backendName) {
    SplittableRandom rng = new SplittableRandom(8);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor value = s.fromArray(Reference.random(rng, 40 * 25, DType.F32), 40, 25, DType.F32);
      Tensor grad = s.fromArray(Reference.random(rng, 40 * 25, DType.F32), 40, 25, DType.F32);
      Parameter p = new Parameter("w", value, grad, null, Parameter.Role.WEIGHT);
      try (AdamW opt = new AdamW(backend, List.of(p), AdamW.Config.DEFAULT)) {
        opt.step(1e-3f, 1f);
        float[] before = opt.firstMoment(p).toFloatArray();
        float[] beforeV = opt.secondMoment(p).toFloatArray();
        opt.pruneState(List.of(p), 0.9);
        for (Tensor t : new Tensor[] {opt.firstMoment(p), opt.secondMoment(p)}) {
          float[] after = t.toFloatArray();
          int zeros = 0;
          for (float f : after) {
            zeros += f == 0f ? 1 : 0;
          }
          assertEquals(900, zeros, "90% of 1000 pruned, exactly");
        }
        float[] afterV = opt.secondMoment(p).toFloatArray();
        float[] afterM = opt.firstMoment(p).toFloatArray();
        for (int i = 0; i < afterV.length; i++) {
          assertEquals(afterM[i] == 0f, afterV[i] == 0f, "m and v pruned at the same positions");
          if (afterV[i] != 0f) {
            assertEquals(beforeV[i], afterV[i]);
          }
        }
        // the survivors are the largest magnitudes, unchanged
        float[] after = opt.firstMoment(p).toFloatArray();
        float smallestKept = Float.MAX_VALUE, largestPruned = 0;
        for (int i = 0; i < after.length; i++) {
          if (after[i] != 0) {
            assertEquals(before[i], after[i]);
            smallestKept = Math.min(smallestKept, Math.abs(before[i]));
          } else {
            largestPruned = Math.max(largestPruned, Math.abs(before[i]));
          }
        }
        assertTrue(largestPruned <= smallestKept, "magnitude order");
        opt.resetState(List.of(p));
        assertEquals(0.0, backend.sumSquares(opt.secondMoment(p)));
        assertEquals(2L * 1000 * 4, opt.stateBytes());
        assertThrows(IllegalArgumentException.class, () -> opt.pruneState(List.of(p), 1.5));
      }
    }
  }

  /** A NaN or inf gradient is refused by name before anything is written. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void nonFiniteGradientsAreRefusedAndNothingIsWritten(String backendName) {
    SplittableRandom rng = new SplittableRandom(9);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Parameter a = new Parameter("a", s.fromArray(Reference.random(rng, 6 * 5, DType.F32), 6, 5, DType.F32),
          s.fromArray(Reference.random(rng, 6 * 5, DType.F32), 6, 5, DType.F32), null, Parameter.Role.WEIGHT);
      Parameter b = new Parameter("layer1.lora_B", s.fromArray(Reference.random(rng, 4 * 3, DType.F32), 4, 3, DType.F32),
          s.fromArray(Reference.random(rng, 4 * 3, DType.F32), 4, 3, DType.F32), null, Parameter.Role.LORA_B);
      try (AdamW opt = new AdamW(backend, List.of(a, b), AdamW.Config.DEFAULT)) {
        opt.step(1e-3f, 1f);
        float[] valueA = a.value().toFloatArray(), valueB = b.value().toFloatArray();
        float[] mB = opt.firstMoment(b).toFloatArray(), vB = opt.secondMoment(b).toFloatArray();
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
          float[] g = b.grad().toFloatArray();
          g[7] = bad;
          g[2] = bad;
          b.grad().copyFrom(g);
          NonFiniteGradientException e = assertThrows(NonFiniteGradientException.class, () -> opt.step(1e-3f, 1f));
          assertEquals("layer1.lora_B", e.parameter());
          assertEquals(2, e.nonFinite());
          assertTrue(e.getMessage().contains("'layer1.lora_B' has 2 non-finite values (of 12)"), e.getMessage());
          assertEquals(1, opt.steps(), "the step count stays");
          assertArrayEquals(valueA, a.value().toFloatArray(), "a parameter before the bad one is untouched");
          assertArrayEquals(valueB, b.value().toFloatArray());
          assertArrayEquals(mB, opt.firstMoment(b).toFloatArray());
          assertArrayEquals(vB, opt.secondMoment(b).toFloatArray());
        }
        b.grad().fill(0.5f);
        assertThrows(IllegalArgumentException.class, () -> opt.step(1e-3f, 1f, Double.NaN),
            "a non-finite sum passed in is refused even when the gradients are finite");
        assertEquals(1, opt.steps());
        opt.step(1e-3f, 1f, opt.gradientSumSquares());
        assertEquals(2, opt.steps(), "finite gradients step again");
        assertThrows(IllegalArgumentException.class, () -> opt.step(1e-3f, Float.NaN), "gradScale");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void loraPlusScalesTheLearningRateOfB(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Parameter a = new Parameter("a", s.allocate(1, 4, DType.F32).fill(0f), s.allocate(1, 4, DType.F32).fill(1f),
          null, Parameter.Role.LORA_A);
      Parameter b = new Parameter("b", s.allocate(1, 4, DType.F32).fill(0f), s.allocate(1, 4, DType.F32).fill(1f),
          null, Parameter.Role.LORA_B);
      try (AdamW opt = new AdamW(backend, List.of(a, b), AdamW.Config.DEFAULT.withLoraPlusRatio(16f))) {
        opt.step(1e-3f, 1f);
        // the first Adam step moves each element by lr (m/sqrt(v) = 1)
        assertEquals(-1e-3f, a.value().toFloatArray()[0], 1e-7f);
        assertEquals(-16e-3f, b.value().toFloatArray()[0], 1e-6f);
        assertEquals(1, opt.steps());
      }
    }
  }
}
