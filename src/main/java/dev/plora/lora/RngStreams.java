package dev.plora.lora;

/**
 * Philox stream numbers, so that every random draw of a run has its own stream under the
 * config's seed: dropout masks per (step, layer), adapter inits per (generation, layer) where
 * the generation counts re-initialisations.
 */
public final class RngStreams {
  private static final long INIT_SPACE = 1L << 63;

  private RngStreams() {}

  public static long dropout(long step, int layer) {
    return ((step & 0x7fffffffL) << 32) | (layer & 0xffffffffL);
  }

  public static long init(long generation, int layer) {
    return INIT_SPACE | ((generation & 0x7fffffffL) << 32) | (layer & 0xffffffffL);
  }
}
