package dev.plora.backend;

import dev.plora.backend.cpu.CpuBackend;
import dev.plora.backend.cuda.CudaBackend;
import dev.plora.backend.cuda.CudaSupport;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Chooses a backend: {@code -Dplora.backend=cpu|cuda}, else the {@code PLORA_BACKEND}
 * environment variable, else cuda when {@link CudaSupport} finds it usable, else cpu. A setting
 * naming anything else is refused, naming the setting. Asking for cuda explicitly where it is
 * unusable is an error that carries the probe's reason.
 */
public final class Backends {
  public static final String PROPERTY = "plora.backend";
  public static final String ENVIRONMENT = "PLORA_BACKEND";

  private Backends() {}

  /** The setting that chooses the backend, "-Dplora.backend" or "PLORA_BACKEND", or null when neither is set. */
  public static String setting() {
    if (!isBlank(System.getProperty(PROPERTY))) {
      return "-D" + PROPERTY;
    }
    return isBlank(System.getenv(ENVIRONMENT)) ? null : ENVIRONMENT;
  }

  /** The backend name the settings ask for ("cpu" or "cuda"), or null when unset; any other name is refused. */
  public static String requested() {
    String setting = setting();
    if (setting == null) {
      return null;
    }
    return name(setting, setting.equals(ENVIRONMENT) ? System.getenv(ENVIRONMENT) : System.getProperty(PROPERTY));
  }

  /** {@code value} as a backend name, "cpu" or "cuda" (any case, spaces around ignored); else refused naming {@code setting}. */
  public static String name(String setting, String value) {
    String name = value == null ? "" : value.trim().toLowerCase(Locale.ROOT);
    if (!name.equals("cpu") && !name.equals("cuda")) {
      throw new IllegalArgumentException(setting + ": expected cpu or cuda, got '" + value + "'");
    }
    return name;
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
    return name("backend", name).equals("cpu") ? new CpuBackend() : new CudaBackend();
  }

  /** Names of the backends usable on this machine. */
  public static List<String> available() {
    List<String> names = new ArrayList<>(List.of("cpu"));
    if (CudaSupport.isUsable()) {
      names.add("cuda");
    }
    return names;
  }

  private static boolean isBlank(String s) {
    return s == null || s.isBlank();
  }
}
