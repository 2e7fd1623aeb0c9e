package dev.plora.backend;

import dev.plora.tensor.DType;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.ToLongFunction;

/**
 * The codes Java passes to the kernel libraries — dtypes, rounding modes, distributions — checked
 * against the libraries' own values (plora_cpu_constant, plora_cuda_constant) when a backend
 * opens, so that a change on either side is refused at once instead of silently mismatched.
 */
final class NativeAbi {
  private NativeAbi() {}

  /** Java's value of each ABI constant, by its C name. */
  static Map<String, Integer> javaCodes() {
    Map<String, Integer> codes = new LinkedHashMap<>();
    for (DType d : DType.values()) {
      codes.put("PLORA_" + d.name(), d.code());
    }
    for (Rounding r : Rounding.values()) {
      codes.put("PLORA_ROUND_" + r.name(), r.code());
    }
    codes.put("PLORA_UNIFORM", RandomFill.UNIFORM);
    codes.put("PLORA_NORMAL", RandomFill.NORMAL);
    return codes;
  }

  /** Throws {@link BackendException} naming the first constant {@code library} disagrees on. */
  static void verify(String library, ToLongFunction<String> nativeValue) {
    for (Map.Entry<String, Integer> e : javaCodes().entrySet()) {
      long value = nativeValue.applyAsLong(e.getKey());
      if (value != e.getValue()) {
        throw new BackendException(library + " does not match this build's Java classes: " + e.getKey() + " is "
            + (value < 0 ? "unknown to it" : String.valueOf(value)) + ", Java uses " + e.getValue()
            + " (rebuild the native libraries and the jar together)");
      }
    }
  }
}
