package dev.plora.backend.cpu;

import dev.plora.backend.BackendException;

/**
 * A LAPACK routine returned a nonzero info: below zero, the argument of that (negated) position
 * was illegal; above zero, the routine did not converge.
 */
public final class LapackException extends BackendException {
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
