package dev.plora.backend;

import static dev.plora.testing.Refusals.assertAllNaN;
import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.plora.backend.cpu.CpuBackend;
import dev.plora.testing.BackendCases;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bad arguments are refused with a message naming the argument and the shapes, before any
 * native call: outputs keep their poison and no memory is allocated.
 */
class ValidationTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void gemmShapeAndDtypeMismatches(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor a = s.allocate(3, 4, DType.F32).fill(1f);
      Tensor b = s.allocate(5, 6, DType.F32).fill(1f);
      Tensor c = s.allocate(3, 6, DType.F32).fill(Float.NaN);
      long bytes = backend.nativeBytes();
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, a, false, b, 1, 0, c),
          "inner dimensions", "[3,4]", "[5,6]");
      Tensor b2 = s.allocate(4, 6, DType.F32).fill(1f);
      Tensor cWrong = s.allocate(3, 5, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, a, false, b2, 1, 0, cWrong),
          "c has shape [3,5]", "[3,6]");
      Tensor bBf16 = s.allocate(4, 6, DType.BF16).fill(1f);
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, a, false, bBf16, 1, 0, c),
          "b has dtype BF16", "F32");
      Tensor aBf16 = s.allocate(3, 4, DType.BF16).fill(1f);
      Tensor cF16 = s.allocate(3, 6, DType.F16).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, aBf16, false, bBf16, 1, 0, cF16),
          "c has dtype F16");
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, a, false, b2, Float.NaN, 0, c),
          "alpha");
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, null, false, b2, 1, 0, c), "a: ");
      Tensor square = s.allocate(4, 4, DType.F32).fill(1f);
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, square, false, square, 1, 0, square),
          "overlaps");
      assertAllNaN(c);
      assertAllNaN(cWrong);
      assertAllNaN(cF16);
      assertEquals(bytes + (4 * 6 + 3 * 5) * 4 + 4 * 6 * 2 + 3 * 4 * 2 + 3 * 6 * 2 + 16 * 4, backend.nativeBytes());
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void shrinkShapeAndDtypeMismatches(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor x = s.allocate(5, 8, DType.F32).fill(1f);
      Tensor a = s.allocate(2, 7, DType.F32).fill(1f);
      Tensor out = s.allocate(5, 2, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> backend.shrink(x, a, 1f, Dropout.NONE, out),
          "a has shape [2,7]", "x has shape [5,8]");
      Tensor a2 = s.allocate(2, 8, DType.F32).fill(1f);
      Tensor outWrong = s.allocate(5, 3, DType.F32).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> backend.shrink(x, a2, 1f, Dropout.NONE, outWrong),
          "out has shape [5,3]", "[5,2]");
      Tensor outBf16 = s.allocate(5, 2, DType.BF16).fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> backend.shrink(x, a2, 1f, Dropout.NONE, outBf16),
          "out has dtype BF16");
      assertRefused(IllegalArgumentException.class, () -> backend.shrink(x, a2, 1f, null, out), "dropout");
      Tensor xaug = s.allocate(5, 9, DType.F32).fill(1f);
      assertRefused(IllegalArgumentException.class,
          () -> backend.shrink(xaug.colsView(0, 8), a2, 1f, Dropout.NONE, xaug.colsView(7, 2)), "overlaps");
      assertAllNaN(out);
      assertAllNaN(outWrong);
      assertAllNaN(outBf16);
    }
  }

  @Test
  void dropoutRange() {
    assertRefused(IllegalArgumentException.class, () -> new Dropout(1f, 0, 0), "dropout p", "1.0");
    assertRefused(IllegalArgumentException.class, () -> new Dropout(-0.1f, 0, 0), "dropout p");
    assertRefused(IllegalArgumentException.class, () -> new Dropout(Float.NaN, 0, 0), "dropout p");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void tensorFromAnotherBackend(String backendName) {
    try (Backend backend = BackendCases.open(backendName); Backend other = new CpuBackend();
        Tensor mine = backend.allocate(2, 2, DType.F32); Tensor foreign = other.allocate(2, 2, DType.F32)) {
      mine.fill(Float.NaN);
      assertRefused(IllegalArgumentException.class, () -> backend.copy(foreign, mine), "src", "belongs to backend");
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, mine, false, foreign, 1, 0, mine),
          "b: ");
      assertAllNaN(mine);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void closedTensorsAreRefused(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor a = s.allocate(2, 2, DType.F32).fill(1f);
      Tensor closed = backend.allocate(2, 2, DType.F32);
      closed.close();
      Tensor c = s.allocate(2, 2, DType.F32).fill(Float.NaN);
      assertRefused(IllegalStateException.class, () -> backend.gemm(false, a, false, closed, 1, 0, c), "b: ",
          "closed");
      assertRefused(IllegalStateException.class, () -> backend.copy(closed, c), "src: ", "closed");
      assertAllNaN(c);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void badSizesAndViews(String backendName) {
    try (Backend backend = BackendCases.open(backendName)) {
      assertRefused(IllegalArgumentException.class, () -> backend.allocate(0, 3, DType.F32), "[0,3]");
      assertRefused(IllegalArgumentException.class, () -> backend.allocate(3, -1, DType.F32), "[3,-1]");
      assertRefused(IllegalArgumentException.class, () -> backend.allocate(3, 4, 2, DType.F32), "ld", "4", "2");
      assertRefused(IllegalArgumentException.class, () -> backend.allocate(3, 4, null), "dtype");
      assertRefused(IllegalArgumentException.class,
          () -> backend.allocate(Integer.MAX_VALUE, Integer.MAX_VALUE, DType.F32), "2^63 bytes");
      assertEquals(0, backend.nativeBytes());
      // 2^31 elements (4 GiB, never touched): more than a float[] holds.
      try (Tensor huge = backend.allocate(1 << 16, 1 << 15, DType.BF16)) {
        assertRefused(IllegalArgumentException.class, huge::toFloatArray, "src", "2147483648 elements",
            "Java array");
      }
      try (Tensor t = backend.allocate(4, 5, DType.F32)) {
        assertRefused(IllegalArgumentException.class, () -> t.view(2, 1, 3, 2), "outside", "[3,2]", "[4,5]");
        assertRefused(IllegalArgumentException.class, () -> t.view(0, 4, 1, 2), "outside");
        assertRefused(IllegalArgumentException.class, () -> t.view(-1, 0, 1, 1), "outside");
        assertRefused(IllegalArgumentException.class, () -> t.view(0, 0, 0, 1), "rows > 0", "[0,1]");
        assertRefused(IllegalArgumentException.class, () -> t.copyFrom(new float[19]), "20", "19", "[4,5]");
        assertRefused(IllegalArgumentException.class, () -> t.copyFrom((float[]) null), "values");
        Tensor other = backend.allocate(5, 4, DType.F32);
        assertRefused(IllegalArgumentException.class, () -> backend.copy(other, t), "dst has shape [4,5]",
            "[5,4]");
        other.close();
      }
    }
  }

  @Test
  void unknownBackendName() {
    assertRefused(IllegalArgumentException.class, () -> Backends.create("tpu"), "cpu or cuda", "tpu");
  }
}
