package dev.plora.testing;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cuda.CudaSupport;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

class BackendCasesTest {
  /** Where CUDA cannot run, its cases skip with the reason, or fail with it when CUDA is required. */
  @Test
  void anUnusableCudaSkipsOrFailsAsAsked() {
    if (CudaSupport.isUsable()) {
      try (Backend cuda = BackendCases.open("cuda")) {
        assertTrue(cuda.name().equals("cuda"));
      }
      return;
    }
    String before = System.getProperty("plora.test.requireCuda");
    try {
      System.clearProperty("plora.test.requireCuda");
      TestAbortedException skipped = assertThrows(TestAbortedException.class, () -> BackendCases.open("cuda"));
      assertTrue(skipped.getMessage().contains(CudaSupport.reason()), skipped.getMessage());
      System.setProperty("plora.test.requireCuda", "true");
      AssertionFailedError failed = assertThrows(AssertionFailedError.class, () -> BackendCases.open("cuda"));
      assertTrue(failed.getMessage().contains(CudaSupport.reason()), failed.getMessage());
    } finally {
      if (before == null) {
        System.clearProperty("plora.test.requireCuda");
      } else {
        System.setProperty("plora.test.requireCuda", before);
      }
    }
  }
}
