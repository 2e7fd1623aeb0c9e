package dev.plora.testing;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.tensor.Tensor;
import org.junit.jupiter.api.function.Executable;

/** Assertions for refused calls: the exception and what its message names, and untouched outputs. */
public final class Refusals {
  private Refusals() {}

  public static void assertRefused(Class<? extends RuntimeException> type, Executable call, String... mentions) {
    RuntimeException e = assertThrows(type, call);
    for (String m : mentions) {
      assertTrue(e.getMessage().contains(m), "\"" + e.getMessage() + "\" should mention \"" + m + "\"");
    }
  }

  /** Every element still holds the NaN poison written before the refused call. */
  public static void assertAllNaN(Tensor t) {
    for (float v : t.toFloatArray()) {
      assertTrue(Float.isNaN(v), "output " + t + " was written by a refused call");
    }
  }
}
