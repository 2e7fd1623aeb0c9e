package dev.plora.tensor;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.testing.BackendCases;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Buffers of several dtypes carved from one allocation, as an activation plan's arena holds them. */
class CarveTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void carvedBuffersAreViewsOfTheirOwnShapeAndDtype(String backendName) {
    try (Backend backend = BackendCases.open(backendName)) {
      Tensor arena = backend.allocate(4, 64, DType.F32).fill(0f); // 1 KiB
      Tensor a = arena.carve(0, 3, 5, DType.F32);
      Tensor b = arena.carve(256, 7, 3, DType.BF16);
      Tensor c = arena.carve(512, 2, 8, DType.F32);
      a.copyFrom(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
      b.fill(2f);
      assertEquals(256, b.address() - a.address());
      assertEquals(DType.BF16, b.dtype());
      assertEquals(3, b.ld());
      assertEquals(2f, b.toFloatArray()[20]);
      assertArrayEquals(new float[16], c.toFloatArray(), "writes to a and b stay in a and b");
      assertEquals(5f, arena.toFloatArray()[4]);
      assertFalse(a.overlaps(b) || b.overlaps(c) || a.overlaps(c));
      // column blocks of a carved buffer at an offset that is no multiple of its row length
      Tensor d = arena.carve(784, 4, 12, DType.F32);
      assertFalse(d.colsView(0, 9).overlaps(d.colsView(9, 3)), "disjoint column blocks");
      assertTrue(d.colsView(0, 10).overlaps(d.colsView(9, 3)));
      assertTrue(d.overlaps(arena.carve(780, 1, 2, DType.F32)), "byte ranges meet at d's first element");
      arena.close();
      assertTrue(a.isClosed() && d.isClosed(), "carved buffers die with the allocation");
      assertThrows(IllegalStateException.class, b::toFloatArray);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void carvingOutsideMisalignedOrFromStridedViewsIsRefused(String backendName) {
    try (Backend backend = BackendCases.open(backendName); Tensor arena = backend.allocate(4, 16, DType.F32)) {
      assertRefused(IllegalArgumentException.class, () -> arena.carve(248, 2, 2, DType.F32), "does not lie");
      assertRefused(IllegalArgumentException.class, () -> arena.carve(-4, 1, 1, DType.F32), "does not lie");
      assertRefused(IllegalArgumentException.class, () -> arena.carve(2, 1, 1, DType.F32), "aligned");
      assertRefused(IllegalArgumentException.class, () -> arena.carve(0, 0, 1, DType.F32), "rows > 0");
      assertRefused(IllegalArgumentException.class, () -> arena.carve(0, 1, 1, null), "dtype");
      assertRefused(IllegalArgumentException.class, () -> arena.colsView(0, 8).carve(0, 1, 1, DType.F32),
          "not contiguous");
      Tensor bf16 = arena.carve(6, 1, 3, DType.BF16); // 2-byte aligned is enough for BF16
      assertEquals(6, bf16.address() - arena.address());
      assertEquals(128, arena.rowsView(2, 2).carve(0, 1, 1, DType.F32).address() - arena.address(),
          "the offset counts from the carved-from tensor's first element");
    }
  }
}
