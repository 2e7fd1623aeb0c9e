package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.tensor.DType;
import java.util.Locale;

/** Parsing shared by the commands: dtype names and the backend option. */
final class Options {
  private Options() {}

  /** "f32", "bf16" (and "f16" when allowed) as a dtype; anything else is bad input naming the option. */
  static DType dtype(String option, String value, boolean allowF16) {
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "f32" -> DType.F32;
      case "bf16" -> DType.BF16;
      case "f16" -> {
        if (!allowF16) {
          throw new IllegalArgumentException(option + ": expected f32 or bf16, got '" + value + "'");
        }
        yield DType.F16;
      }
      default -> throw new IllegalArgumentException(option + ": expected f32, bf16" + (allowF16 ? " or f16" : "")
          + ", got '" + value + "'");
    };
  }

  /** The backend the {@code --backend} option names, or the default choice when it is absent. */
  static Backend backend(String name) {
    return name == null ? Backends.create() : Backends.create(name);
  }
}
