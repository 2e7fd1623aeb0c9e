package dev.plora.optim;

/**
 * An optimizer step refused because a gradient holds NaN or infinity; nothing was written, so the
 * weights and optimizer state are those before the call.
 */
public final class NonFiniteGradientException extends ArithmeticException {
  private final String parameter;
  private final long nonFinite;

  public NonFiniteGradientException(String parameter, long nonFinite, long elements, long stepsTaken) {
    super("gradient of parameter '" + parameter + "' has " + nonFinite + " non-finite values (of " + elements
        + ") after " + stepsTaken + " steps; the step was not taken and the weights and moments are unchanged");
    this.parameter = parameter;
    this.nonFinite = nonFinite;
  }

  public String parameter() {
    return parameter;
  }

  public long nonFinite() {
    return nonFinite;
  }
}
