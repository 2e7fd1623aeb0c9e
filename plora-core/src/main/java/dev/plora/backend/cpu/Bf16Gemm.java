package dev.plora.backend.cpu;

import java.util.Locale;

/**
 * How the host backend runs GEMMs on BF16 operands. Chosen by {@code -Dplora.cpu.bf16gemm}, else
 * the {@code PLORA_CPU_BF16GEMM} environment variable, else {@link #AUTO}; F32 GEMMs always go to
 * OpenBLAS's sgemm and F16 ones always take the {@link #OPENBLAS} route.
 */
public enum Bf16Gemm {
  /** {@link #ONEDNN} where this CPU has bf16 arithmetic and oneDNN loads, else {@link #OPENBLAS}. */
  AUTO,
  /** oneDNN's bf16 matmul (AVX512-BF16 / AMX, fp32 accumulation); opening a backend fails where it is unusable. */
  ONEDNN,
  /** Operands widened to fp32 temporaries, OpenBLAS sgemm, the result rounded once: any CPU. */
  OPENBLAS;

  public static final String PROPERTY = "plora.cpu.bf16gemm";
  public static final String ENVIRONMENT = "PLORA_CPU_BF16GEMM";

  /** The route the settings ask for; AUTO when neither is set; any other value is refused naming the setting. */
  public static Bf16Gemm fromSettings() {
    String property = System.getProperty(PROPERTY);
    if (property != null && !property.isBlank()) {
      return parse("-D" + PROPERTY, property);
    }
    String environment = System.getenv(ENVIRONMENT);
    return environment == null || environment.isBlank() ? AUTO : parse(ENVIRONMENT, environment);
  }

  /** {@code value} ("auto", "onednn" or "openblas", any case) as a route; else refused naming {@code setting}. */
  public static Bf16Gemm parse(String setting, String value) {
    String name = value == null ? "" : value.trim().toUpperCase(Locale.ROOT);
    for (Bf16Gemm route : values()) {
      if (route.name().equals(name)) {
        return route;
      }
    }
    throw new IllegalArgumentException(setting + ": expected auto, onednn or openblas, got '" + value + "'");
  }

  /** The lower-case name the settings use. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
