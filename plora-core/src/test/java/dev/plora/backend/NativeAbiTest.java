package dev.plora.backend;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.plora.tensor.DType;
import dev.plora.testing.BackendCases;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Java's ABI codes are checked against the kernel library's own, by name, when a backend opens. */
class NativeAbiTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void everyCodeJavaPassesIsTheLibrarysOwn(String backendName) {
    try (Backend backend = BackendCases.open(backendName)) {
      Map<String, Integer> codes = NativeAbi.javaCodes();
      for (DType d : DType.values()) {
        assertEquals(d.code(), backend.constant("PLORA_" + d.name()), d.name());
      }
      for (Rounding r : Rounding.values()) {
        assertEquals(r.code(), backend.constant("PLORA_ROUND_" + r.name()), r.name());
      }
      assertEquals(8, codes.size(), "four dtypes, two roundings, two distributions: " + codes);
      codes.forEach((name, code) -> assertEquals((long) code, backend.constant(name), name));
      assertEquals(-1, backend.constant("PLORA_NO_SUCH_CONSTANT"));
    }
  }

  @Test
  void aLibraryThatDisagreesIsRefusedNamingTheConstant() {
    assertRefused(BackendException.class, () -> NativeAbi.verify("libplora_test",
        name -> name.equals("PLORA_ROUND_STOCHASTIC") ? 7 : NativeAbi.javaCodes().get(name)),
        "libplora_test", "PLORA_ROUND_STOCHASTIC is 7", "Java uses 1");
    assertRefused(BackendException.class, () -> NativeAbi.verify("libplora_old",
        name -> name.equals("PLORA_I32") ? -1 : NativeAbi.javaCodes().get(name)),
        "libplora_old", "PLORA_I32 is unknown to it", "Java uses 3");
  }
}
