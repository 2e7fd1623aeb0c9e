package dev.plora.tensor;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.testing.BackendCases;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Closing, scopes and native byte accounting. */
class LifecycleTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void doubleCloseIsFineAndUseAfterCloseThrows(String backendName) {
    try (Backend backend = BackendCases.open(backendName)) {
      Tensor t = backend.allocate(3, 4, DType.F32);
      Tensor view = t.view(1, 1, 2, 2);
      t.close();
      assertDoesNotThrow(t::close);
      assertTrue(t.isClosed());
      IllegalStateException e = assertThrows(IllegalStateException.class, t::toFloatArray);
      assertTrue(e.getMessage().contains("closed"), e.getMessage());
      assertThrows(IllegalStateException.class, () -> t.copyFrom(new float[12]));
      assertThrows(IllegalStateException.class, () -> t.fill(1f));
      assertThrows(IllegalStateException.class, () -> t.view(0, 0, 1, 1));
      assertThrows(IllegalStateException.class, t::address);
      // a view dies with the storage of its owner
      assertTrue(view.isClosed());
      e = assertThrows(IllegalStateException.class, view::toFloatArray);
      assertTrue(e.getMessage().contains("freed"), e.getMessage());
      assertEquals(0, backend.nativeBytes());
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void closingAViewKeepsTheParent(String backendName) {
    try (Backend backend = BackendCases.open(backendName); Tensor t = backend.allocate(2, 2, DType.F32)) {
      t.copyFrom(new float[] {1, 2, 3, 4});
      Tensor view = t.view(1, 0, 1, 2);
      view.close();
      assertThrows(IllegalStateException.class, view::toFloatArray);
      assertEquals(4f, t.toFloatArray()[3]);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void scopeFreesEverything(String backendName) {
    try (Backend backend = BackendCases.open(backendName)) {
      long before = backend.nativeBytes();
      Tensor kept;
      try (TensorScope scope = new TensorScope(backend)) {
        kept = scope.allocate(10, 10, DType.F32);
        scope.allocate(5, 7, 9, DType.BF16);
        scope.fromArray(new float[] {1, 2, 3}, 1, 3, DType.F16);
        assertEquals(3, scope.size());
        assertEquals(before + 400 + 5 * 9 * 2 + 6, backend.nativeBytes());
      }
      assertTrue(kept.isClosed());
      assertEquals(before, backend.nativeBytes());
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void manyAllocateCloseCyclesLeaveNoBytes(String backendName) {
    try (Backend backend = BackendCases.open(backendName)) {
      long before = backend.nativeBytes();
      for (int i = 0; i < 100_000; i++) {
        Tensor t = backend.allocate(1 + i % 13, 1 + i % 7, DType.values()[i % 3]);
        t.close();
      }
      assertEquals(before, backend.nativeBytes());
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void closedBackendRefusesWork(String backendName) {
    Backend backend = BackendCases.open(backendName);
    backend.close();
    assertDoesNotThrow(backend::close);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> backend.allocate(1, 1, DType.F32));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
  }
}
