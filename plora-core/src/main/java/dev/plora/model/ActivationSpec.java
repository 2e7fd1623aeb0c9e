package dev.plora.model;

import dev.plora.tensor.DType;
import java.util.regex.Pattern;

/**
 * A buffer a module needs for one input shape: its name (its path in a model is the module's
 * path, a dot and the name, as for parameters), its shape and dtype, and how long it lives.
 */
public record ActivationSpec(String name, int rows, int cols, DType dtype, Lifetime lifetime) {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_]+(\\.[A-Za-z0-9_]+)*");

  /** How long a buffer's contents must last, which decides where an {@link ActivationPlan} puts it. */
  public enum Lifetime {
    /**
     * Written by forward, read after it (by backward or by the caller), and never recomputed: a
     * module's input, from which it recomputes, and its output.
     */
    KEPT,
    /**
     * Written by forward and read by backward; when the module or a module above it recomputes,
     * the buffer lives only while that module runs, and its backward writes it again first.
     */
    RECOMPUTABLE,
    /** Used within one forward or backward call of the module: gradients and workspace. */
    SCRATCH
  }

  public ActivationSpec {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("activation name: expected letters, digits or '_' (dotted for a path), got "
          + (name == null ? "null" : "'" + name + "'"));
    }
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("activation '" + name + "': expected a positive shape, got [" + rows + ","
          + cols + "]");
    }
    if (dtype == null || lifetime == null) {
      throw new IllegalArgumentException("activation '" + name + "': dtype and lifetime must not be null");
    }
  }

  public static ActivationSpec kept(String name, int rows, int cols, DType dtype) {
    return new ActivationSpec(name, rows, cols, dtype, Lifetime.KEPT);
  }

  public static ActivationSpec recomputable(String name, int rows, int cols, DType dtype) {
    return new ActivationSpec(name, rows, cols, dtype, Lifetime.RECOMPUTABLE);
  }

  public static ActivationSpec scratch(String name, int rows, int cols, DType dtype) {
    return new ActivationSpec(name, rows, cols, dtype, Lifetime.SCRATCH);
  }

  /** The same buffer named {@code prefix.name}. */
  ActivationSpec under(String prefix) {
    return prefix.isEmpty() ? this : new ActivationSpec(prefix + "." + name, rows, cols, dtype, lifetime);
  }

  /** Bytes of the buffer. */
  public long bytes() {
    return (long) rows * cols * dtype.byteSize();
  }

  @Override
  public String toString() {
    return name + " [" + rows + "," + cols + "] " + dtype + " " + lifetime.name().toLowerCase();
  }
}
