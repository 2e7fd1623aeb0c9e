package dev.plora.backend;

import dev.plora.backend.cpu.CpuBackend;
import dev.plora.backend.cuda.CudaBackend;
import dev.plora.backend.cuda.CudaSupport;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Chooses a backend: {@code -Dplora.backend=cpu|cuda}, else the {@code PLORA_BACKEND}
 * environment variable, else cuda when {@link CudaSupport} finds it usable, else cpu. Asking
 * for cuda explicitly where it is unusable is an error that carries the probe's reason.
 */
public final class Backends {
  public static final String PROPERTY = "plora.backend";
  public static final String ENVIRONMENT = "PLORA_BACKEND";

  private Backends() {}

  /** The backend name the settings ask for ("cpu" or "cuda"), or null when unset. */
  public static String requested() {
    String name = System.getProperty(PROPERTY);
    if (name == null || name.isBlank()) {
      name = System.getenv(ENVIRONMENT);
    }
    return name == null || name.isBlank() ? null : name.trim().toLowerCase(Locale.ROOT);
  }

  /** A new backend as chosen by the settings, or the best available one. */
  public static Backend create() {
    String name = requested();
    if (name != null) {
      return create(name);
    }
    return CudaSupport.isUsable() ? new CudaBackend() : new CpuBackend();
  }

  /** A new backend by name: "cpu" or "cuda". */
  public static Backend create(String name) {
    if (name == null) {
      throw new IllegalArgumentException("backend: must not be null; expected cpu or cuda");
    }
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "cpu" -> new CpuBackend();
      case "cuda" -> new CudaBackend();
      default -> throw new IllegalArgumentException("backend: expected cpu or cuda, got '" + name + "'");
    };
  }

  /** Names of the backends usable on this machine. */
  public static List<String> available() {
    List<String> names = new ArrayList<>(List.of("cpu"));
    if (CudaSupport.isUsable()) {
      names.add("cuda");
    }
    return names;
  }
}
