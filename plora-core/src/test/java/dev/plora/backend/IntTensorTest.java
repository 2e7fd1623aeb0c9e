package dev.plora.backend;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.testing.BackendCases;
import java.nio.IntBuffer;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** I32 tensors (token ids, labels): exact int round trips, copies and fills; everything else refused by name. */
class IntTensorTest {
  private static final int[] EXTREMES = {Integer.MIN_VALUE, -16777217, -1, 0, 1, 16777217, Integer.MAX_VALUE};

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void intsRoundTripExactlyThroughHostCopiesCopiesAndViews(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      int[] values = new int[7 * 9];
      SplittableRandom rng = new SplittableRandom(3);
      for (int i = 0; i < values.length; i++) {
        values[i] = i < EXTREMES.length ? EXTREMES[i] : rng.nextInt();
      }
      Tensor t = scope.fromInts(values, 7, 9);
      assertEquals(DType.I32, t.dtype());
      assertArrayEquals(values, t.toIntArray(), "fromInts / readInts");

      Tensor parent = scope.allocate(9, 12, DType.I32);
      backend.fill(parent, -7);
      Tensor view = parent.view(1, 2, 7, 9); // strided: ld 12
      backend.copy(t, view);
      assertArrayEquals(values, view.toIntArray(), "copy into a strided view");
      int untouched = 0;
      for (int v : parent.toIntArray()) {
        untouched += v == -7 ? 1 : 0;
      }
      assertEquals(9 * 12 - 7 * 9, untouched, "the copy wrote only the view");

      view.copyFrom(new int[7 * 9]);
      assertArrayEquals(new int[7 * 9], view.toIntArray(), "Tensor.copyFrom(int[])");
      for (float v : new float[] {-0x1p31f, 0x1p30f, -123f}) {
        backend.fill(t, v);
        for (int x : t.toIntArray()) {
          assertEquals((int) v, x, "fill " + v);
        }
      }
    }
  }

  @Test
  void intsTravelInPiecesWhenLargerThanTheStagingBuffer() {
    try (Backend backend = BackendCases.open("cpu"); TensorScope scope = new TensorScope(backend)) {
      for (int stagingBytes : new int[] {4, 36, 52}) { // one int, a few, odd sizes
        HostStaging staging = new HostStaging(stagingBytes);
        Tensor view = scope.allocate(5, 13, DType.I32).view(1, 2, 4, 11);
        int[] values = new SplittableRandom(stagingBytes).ints(44).toArray();
        staging.write(view, IntBuffer.wrap(values), backend::upload);
        int[] back = new int[44];
        staging.read(view, IntBuffer.wrap(back), backend::download);
        assertArrayEquals(values, back, stagingBytes + " bytes");
        assertArrayEquals(values, view.toIntArray(), stagingBytes + " bytes");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void floatPathsAndKernelsRefuseI32ByNameBeforeAnyNativeCall(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      Tensor ids = scope.fromInts(new int[] {1, 2, 3, 4, 5, 6}, 2, 3);
      Tensor floats = scope.allocate(2, 3, DType.F32).fill(0.5f);
      long bytes = backend.nativeBytes();
      assertRefused(IllegalArgumentException.class, () -> backend.read(ids), "src", "holds ints", "readInts");
      assertRefused(IllegalArgumentException.class, () -> backend.write(ids, new float[6]), "dst", "write(Tensor, int[])");
      assertRefused(IllegalArgumentException.class, () -> backend.fromArray(new float[6], 2, 3, DType.I32), "dtype",
          "fromInts");
      assertRefused(IllegalArgumentException.class, () -> backend.write(floats, new int[6]), "dst", "F32",
          "expected I32");
      assertRefused(IllegalArgumentException.class, floats::toIntArray, "src", "expected I32");
      assertRefused(IllegalArgumentException.class, () -> backend.fromInts(new int[5], 2, 3), "values",
          "expected 6 ints", "got 5");
      assertRefused(IllegalArgumentException.class, () -> backend.copy(ids, floats), "copy", "I32 copies only to I32");
      assertRefused(IllegalArgumentException.class, () -> backend.copy(floats, ids), "copy", "I32 copies only to I32");
      assertRefused(IllegalArgumentException.class, () -> backend.fill(ids, 1.5f), "fill", "value", "integer", "1.5");
      assertRefused(IllegalArgumentException.class, () -> backend.fill(ids, 0x1p31f), "fill", "value", "integer");
      assertRefused(IllegalArgumentException.class, () -> backend.fill(ids, Float.NaN), "fill", "value", "NaN");
      assertRefused(IllegalArgumentException.class, () -> backend.axpby(1, ids, 0, floats), "axpby", "x", "I32",
          "float dtype");
      assertRefused(IllegalArgumentException.class, () -> backend.gelu(ids, ids), "gelu", "x", "I32");
      assertRefused(IllegalArgumentException.class, () -> backend.sumSquares(List.of(floats, ids)), "xs[1]", "I32");
      assertRefused(IllegalArgumentException.class, () -> backend.countNonFinite(ids), "countNonFinite", "I32");
      assertRefused(IllegalArgumentException.class, () -> backend.fillUniform(ids, 0, 1, 1, 1), "fillUniform", "I32");
      assertRefused(IllegalArgumentException.class, () -> backend.gemm(false, ids, true, ids, 1, 0, floats), "gemm",
          "a", "I32");
      assertRefused(IllegalArgumentException.class, () -> DType.I32.round(1f), "I32", "not a float dtype");
      assertEquals(bytes, backend.nativeBytes(), "refused calls allocate nothing");
      assertArrayEquals(new int[] {1, 2, 3, 4, 5, 6}, ids.toIntArray(), "refused calls change nothing");
      for (float v : floats.toFloatArray()) {
        assertEquals(0.5f, v, "refused calls change nothing");
      }
    }
  }

  /** The native contract behind the Java checks, for direct C callers: called here without them. */
  @Test
  void theHostLibraryRefusesI32ConversionsAndNonIntegralFillsItself() {
    try (Backend backend = BackendCases.open("cpu"); TensorScope scope = new TensorScope(backend)) {
      Tensor ids = scope.fromInts(new int[] {5, 6}, 1, 2);
      Tensor floats = scope.allocate(1, 2, DType.F32).fill(0f);
      int invalid = 1; // PLORA_ERR_INVALID
      assertEquals(invalid, Elementwise.Cpu.plora_cpu_copy(ids.address(), DType.I32.code(), 2, floats.address(),
          DType.F32.code(), 2, 1, 2));
      assertTrue(backend.lastError().contains("I32 copies only to I32"), backend.lastError());
      assertEquals(invalid, Elementwise.Cpu.plora_cpu_fill(ids.address(), DType.I32.code(), 2, 1, 2, 2.5f));
      assertTrue(backend.lastError().contains("not an integer"), backend.lastError());
      assertEquals(invalid, Elementwise.Cpu.plora_cpu_axpby(1, ids.address(), DType.I32.code(), 2, 0,
          ids.address(), DType.I32.code(), 2, 1, 2), "axpby computes on floats only");
      assertArrayEquals(new int[] {5, 6}, ids.toIntArray(), "refused native calls write nothing");
      assertEquals(0, Elementwise.Cpu.plora_cpu_fill(ids.address(), DType.I32.code(), 2, 1, 2, -0x1p31f));
      assertArrayEquals(new int[] {Integer.MIN_VALUE, Integer.MIN_VALUE}, ids.toIntArray());
    }
  }
}
