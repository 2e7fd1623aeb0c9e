package dev.plora.train;

import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Training progress as log lines through SLF4J, for runs off a terminal (a service, a batch job,
 * a notebook): every {@code every} steps and at the last, at INFO, the step, mean loss, learning
 * rate, gradient norm before clipping and steps per second since the run started, and the tokens
 * or samples per second when {@link #counting} says how many a step holds. Unloads are logged at
 * DEBUG.
 *
 * <pre>{@code
 * Trainer.<Batch>builder(backend)...
 *     .listener(new LogListener(100).counting(batchSize * seqLen * accumulation, "tokens"))
 * }</pre>
 *
 * <p>A line reads {@code step 200/1000 loss 0.0123457 lr 1.000e-03 grad_norm 0.4321 12.50 steps/s
 * 51200.0 tokens/s}.
 */
public final class LogListener implements TrainListener {
  private final Logger log;
  private final int every;
  private final long itemsPerStep;
  private final String unit;

  /** Logs every {@code every} steps (and the last) to the logger {@code dev.plora.train.LogListener}. */
  public LogListener(int every) {
    this(LoggerFactory.getLogger(LogListener.class), every, 0, null);
  }

  private LogListener(Logger log, int every, long itemsPerStep, String unit) {
    if (every < 1) {
      throw new IllegalArgumentException("every: expected >= 1 step, got " + every);
    }
    this.log = log;
    this.every = every;
    this.itemsPerStep = itemsPerStep;
    this.unit = unit;
  }

  /**
   * This listener also logging throughput in {@code unit} ("tokens", "samples"): {@code perStep}
   * of them in each optimizer step, all micro-batches together.
   */
  public LogListener counting(long perStep, String unit) {
    if (perStep < 1) {
      throw new IllegalArgumentException("perStep: expected >= 1 " + unit + " a step, got " + perStep);
    }
    if (unit == null || unit.isBlank()) {
      throw new IllegalArgumentException("unit: expected a name such as \"tokens\" or \"samples\", got "
          + (unit == null ? "null" : "\"" + unit + "\""));
    }
    return new LogListener(log, every, perStep, unit);
  }

  /** This listener logging to {@code logger} instead. */
  public LogListener to(Logger logger) {
    if (logger == null) {
      throw new IllegalArgumentException("logger: must not be null");
    }
    return new LogListener(logger, every, itemsPerStep, unit);
  }

  @Override
  public void onStep(StepEvent e) {
    long done = e.step() + 1;
    if ((done % every != 0 && done != e.totalSteps()) || !log.isInfoEnabled()) {
      return;
    }
    String line = String.format(Locale.ROOT, "step %d/%d loss %.6g lr %.3e grad_norm %.4g %.2f steps/s", done,
        e.totalSteps(), e.loss(), e.lr(), e.gradNorm(), e.stepsPerSecond());
    if (itemsPerStep > 0) {
      line += String.format(Locale.ROOT, " %.1f %s/s", e.stepsPerSecond() * itemsPerStep, unit);
    }
    log.info(line);
  }

  @Override
  public void onUnload(UnloadEvent e) {
    log.debug("unload {} after step {} ({})", e.index(), e.step() + 1, e.policy());
  }
}
