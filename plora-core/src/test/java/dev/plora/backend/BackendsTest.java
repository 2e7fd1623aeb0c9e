package dev.plora.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.cuda.CudaBackend;
import dev.plora.backend.cuda.CudaSupport;
import org.junit.jupiter.api.Test;

class BackendsTest {
  @Test
  void cpuIsAlwaysAvailable() {
    assertTrue(Backends.available().contains("cpu"));
    try (Backend cpu = Backends.create("CPU")) {
      assertEquals("cpu", cpu.name());
    }
  }

  @Test
  void probeGivesAReason() {
    assertFalse(CudaSupport.reason().isBlank());
    assertEquals(CudaSupport.isUsable(), Backends.available().contains("cuda"));
  }

  @Test
  void unusableCudaFailsWithTheProbeReason() {
    if (CudaSupport.isUsable()) {
      try (Backend cuda = new CudaBackend()) {
        assertEquals("cuda", cuda.name());
      }
      return;
    }
    BackendException e = assertThrows(BackendException.class, CudaBackend::new);
    assertTrue(e.getMessage().contains(CudaSupport.reason()), e.getMessage());
  }

  @Test
  void defaultFollowsTheProbe() {
    if (Backends.requested() != null) {
      return; // chosen by the environment of this run
    }
    try (Backend b = Backends.create()) {
      assertEquals(CudaSupport.isUsable() ? "cuda" : "cpu", b.name());
    }
  }
}
