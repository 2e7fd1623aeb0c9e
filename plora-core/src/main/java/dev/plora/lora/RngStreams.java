package dev.plora.lora;

/**
 * Philox stream numbers, so that every random draw of a run has its own stream under the
 * config's seed: dropout masks per (step, layer), adapter inits per (generation, layer) where the
 * generation counts re-initialisations, and stochastic rounding per (unload, layer). The top two
 * bits keep the three families apart; 30 bits count steps, generations and unloads.
 */
public final class RngStreams {
  private static final long COUNTER_MASK = (1L << 30) - 1;

  private RngStreams() {}

  public static long dropout(long step, int layer) {
    return compose(0L, step, layer);
  }

  public static long init(long generation, int layer) {
    return compose(1L << 63, generation, layer);
  }

  public static long rounding(long unload, int layer) {
    return compose(1L << 62, unload, layer);
  }

  private static long compose(long family, long counter, int layer) {
    return family | ((counter & COUNTER_MASK) << 32) | (layer & 0xffffffffL);
  }
}
