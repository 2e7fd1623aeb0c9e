package dev.plora.train;

/** Hears what a {@link Trainer} does. Calls come on the training thread, after each event. */
public interface TrainListener {
  /** After each optimizer step. */
  default void onStep(StepEvent event) {}

  /** After each PLoRA unload. */
  default void onUnload(UnloadEvent event) {}

  /**
   * One optimizer step: its 0-based index, mean loss over the accumulated micro-batches, the
   * learning rate used, the gradient norm before clipping, and the throughput so far.
   */
  record StepEvent(long step, long totalSteps, double loss, double lr, double gradNorm, double stepsPerSecond) {}

  /** An unload after {@code step} (0-based) — the {@code index}-th of the run. */
  record UnloadEvent(long step, long index, String policy) {}
}
