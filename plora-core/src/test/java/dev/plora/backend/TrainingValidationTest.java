package dev.plora.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;

import static dev.plora.testing.Refusals.assertAllNaN;
import static dev.plora.testing.Refusals.assertRefused;

import dev.plora.backend.cpu.CpuBackend;
import dev.plora.testing.BackendCases;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The training and model kernels refuse wrong shapes, dtypes, foreign or closed tensors, null and
 * bad scalars with a message naming the argument, before any native call (outputs keep their
 * poison).
 */
class TrainingValidationTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void loraBackwardKernels(String backendName) {
    try (Backend b = BackendCases.open(backendName); TensorScope s = new TensorScope(b)) {
      Tensor dy = s.allocate(6, 5, DType.F32).fill(1f), bm = s.allocate(5, 2, DType.F32).fill(1f);
      Tensor ss = s.allocate(6, 2, DType.F32).fill(1f), ds = s.allocate(6, 2, DType.F32).fill(Float.NaN);
      Tensor db = s.allocate(5, 2, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> b.dyPass(dy, s.allocate(4, 2, DType.F32), ss, 1f, ds, db),
          "b has shape [4,2]", "[5,2]");
      assertRefused(IllegalArgumentException.class, () -> b.dyPass(dy, bm, ss, 1f, ds, s.allocate(5, 2, DType.BF16)),
          "db has dtype BF16", "F32");
      assertRefused(IllegalArgumentException.class, () -> b.dyPass(dy, bm, ss, Float.POSITIVE_INFINITY, ds, db), "scaling");
      assertRefused(IllegalArgumentException.class, () -> b.dyPass(null, bm, ss, 1f, ds, db), "dy: ");
      Tensor x = s.allocate(6, 7, DType.F32).fill(1f), a = s.allocate(2, 7, DType.F32).fill(1f);
      Tensor da = s.allocate(2, 7, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> b.daDx(x, ds, s.allocate(2, 6, DType.F32), Dropout.NONE, da, null),
          "a has shape [2,6]", "[2,7]");
      assertRefused(IllegalArgumentException.class, () -> b.daDx(x, ds, a, null, da, null), "dropout");
      assertRefused(IllegalArgumentException.class, () -> b.daDx(x, ds, a, Dropout.NONE, da, s.allocate(6, 6, DType.F32)),
          "dx has shape [6,6]");
      assertRefused(IllegalArgumentException.class, () -> b.daDx(x, ds, a, Dropout.NONE, da, x), "overlaps");
      assertAllNaN(ds);
      assertAllNaN(db);
      assertAllNaN(da);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void mergeAndAdamw(String backendName) {
    try (Backend b = BackendCases.open(backendName); TensorScope s = new TensorScope(b); Backend other = new CpuBackend()) {
      Tensor w = s.allocate(4, 6, DType.F32).fill(Float.NaN), a = s.allocate(2, 6, DType.F32).fill(1f);
      Tensor bm = s.allocate(4, 2, DType.F32).fill(1f);
      assertRefused(IllegalArgumentException.class, () -> b.merge(w, s.allocate(3, 2, DType.F32), a, 1f, Rounding.NEAREST, 0, 0,
          1f, 1f), "b has shape [3,2]", "[4,2]");
      assertRefused(IllegalArgumentException.class, () -> b.merge(w, s.allocate(4, 2, DType.BF16), a, 1f, Rounding.NEAREST, 0,
          0, 1f, 1f), "b has dtype BF16");
      assertRefused(IllegalArgumentException.class, () -> b.merge(w, bm, a, Float.NaN, Rounding.NEAREST, 0, 0, 1f, 1f), "c:");
      assertRefused(IllegalArgumentException.class, () -> b.merge(w, bm, a, 1f, null, 0, 0, 1f, 1f), "rounding");
      assertRefused(IllegalArgumentException.class, () -> b.merge(w, bm, a, 1f, Rounding.NEAREST, 0, 0, 1f, Float.NaN), "scaleB");
      assertAllNaN(w);
      Tensor p = s.allocate(3, 3, DType.F32).fill(Float.NaN), g = s.allocate(3, 3, DType.F32).fill(1f);
      Tensor m = s.allocate(3, 3, DType.F32).fill(0f), v = s.allocate(3, 3, DType.F32).fill(0f);
      AdamwHyper h = new AdamwHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1f, 0.1f, 0.001f);
      assertRefused(IllegalArgumentException.class, () -> b.adamw(List.of(new AdamwSlot(p, s.allocate(3, 4, DType.F32), m, v,
          null, 1f)), h), "[3,4]", "[3,3]");
      assertRefused(IllegalArgumentException.class, () -> b.adamw(List.of(new AdamwSlot(p, s.allocate(3, 3, DType.BF16), m, v,
          null, 1f)), h), "contiguous F32");
      assertRefused(IllegalArgumentException.class, () -> b.adamw(List.of(new AdamwSlot(p, g, m, v, null, -1f)), h), "lrScale");
      assertRefused(IllegalArgumentException.class, () -> b.adamw(List.of(new AdamwSlot(p, g, m, v, null, 1f)),
          new AdamwHyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1f, 0f, 0.001f)), "bias corrections");
      try (Tensor foreign = other.allocate(3, 3, DType.F32)) {
        assertRefused(IllegalArgumentException.class, () -> b.adamw(List.of(new AdamwSlot(p, g, foreign, v, null, 1f)), h),
            "belongs to backend");
      }
      Tensor closed = b.allocate(3, 3, DType.F32);
      closed.close();
      assertRefused(IllegalStateException.class, () -> b.adamw(List.of(new AdamwSlot(p, g, m, closed, null, 1f)), h), "closed");
      assertAllNaN(p);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void modelOpsAndFills(String backendName) {
    try (Backend b = BackendCases.open(backendName); TensorScope s = new TensorScope(b)) {
      Tensor x = s.allocate(4, 5, DType.F32).fill(1f), y = s.allocate(4, 5, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> b.gelu(x, s.allocate(5, 4, DType.F32)), "y has shape [5,4]");
      assertRefused(IllegalArgumentException.class, () -> b.gelu(x, s.allocate(4, 5, DType.BF16)), "y has dtype BF16");
      assertRefused(IllegalArgumentException.class, () -> b.geluBackward(x, x, x), "overlaps");
      assertRefused(IllegalArgumentException.class, () -> b.mse(x, s.allocate(4, 4, DType.F32), null), "target has shape");
      assertRefused(IllegalArgumentException.class, () -> b.softmaxCrossEntropy(x, s.allocate(3, 1, DType.F32), null),
          "labels has shape [3,1]", "[4,1]");
      assertRefused(IllegalArgumentException.class, () -> b.softmaxCrossEntropy(x, s.allocate(4, 1, DType.BF16), null),
          "labels has dtype BF16");
      assertRefused(IllegalArgumentException.class, () -> b.axpby(1f, x, 1f, s.allocate(4, 6, DType.F32)), "y has shape [4,6]");
      assertRefused(IllegalArgumentException.class, () -> b.addBias(y, s.allocate(1, 4, DType.F32)), "bias has shape [1,4]");
      assertRefused(IllegalArgumentException.class, () -> b.fillUniform(y, 2f, 1f, 0, 0), "low <= high");
      assertRefused(IllegalArgumentException.class, () -> b.fillNormal(y, 0f, -1f, 0, 0), "std");
      assertRefused(IllegalArgumentException.class, () -> b.dropoutMask(null, y), "dropout");
      assertRefused(IllegalArgumentException.class, () -> b.sumSquares((java.util.List<Tensor>) null), "xs: ");
      assertRefused(IllegalArgumentException.class, () -> b.sumSquares(java.util.Arrays.asList(x, null)), "xs[1]");
      Tensor closed = s.allocate(2, 2, DType.F32);
      closed.close();
      assertRefused(IllegalStateException.class, () -> b.sumSquares(java.util.List.of(x, closed)), "xs[1]");
      assertAllNaN(y);
      assertEquals(0, b.countNonFinite(x));
      assertEquals(20, b.countNonFinite(y));
    }
  }
}
