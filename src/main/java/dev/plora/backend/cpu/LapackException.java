package dev.plora.backend.cpu;

/**
 * A LAPACK routine returned a nonzero info: below zero, the argument of that (negated) position
 * was illegal; above zero, the routine did not converge.
 */
public final class LapackException extends RuntimeException {
  private final int info;

  LapackException(String message, int info) {
    super(message);
    this.info = info;
  }

  /** LAPACK's info. */
  public int info() {
    return info;
  }
}
