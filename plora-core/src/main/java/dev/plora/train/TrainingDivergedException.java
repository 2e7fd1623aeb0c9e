package dev.plora.train;

/**
 * A loss or gradient became NaN or infinite. The run stopped before the optimizer step, so
 * the weights are those of the last good step.
 */
public final class TrainingDivergedException extends ArithmeticException {
  private final long step;

  public TrainingDivergedException(long step, String what) {
    super("training stopped at step " + step + ": " + what + "; the weights are as of the last good step ("
        + (step - 1) + ")");
    this.step = step;
  }

  /** The step (0-based) whose loss or gradient was not finite. */
  public long step() {
    return step;
  }
}
