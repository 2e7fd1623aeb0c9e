package dev.plora.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from a logits vector as a {@link GenerationConfig} says: greedy (argmax,
 * ties to the lowest id), or a draw from softmax(logits / temperature) restricted to the top-k
 * tokens and then to the smallest set of the most likely whose probability reaches top-p (at
 * least one token). The draws come from a {@link SplittableRandom} seeded with the config's seed:
 * the same seed gives the same tokens for the same logits. Probabilities in float64.
 */
public final class Sampler {
  private final GenerationConfig config;
  private final SplittableRandom random;

  public Sampler(GenerationConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config: must not be null");
    }
    this.config = config;
    this.random = new SplittableRandom(config.seed());
  }

  /** The next token's id; {@code logits} must hold finite values or -inf (at least one finite). */
  public int sample(float[] logits) {
    if (logits == null || logits.length == 0) {
      throw new IllegalArgumentException("logits: expected at least one value");
    }
    int best = argmax(logits);
    if (config.isGreedy()) {
      return best;
    }
    int[] order = byLogit(logits);
    int kept = config.topK() > 0 ? Math.min(config.topK(), order.length) : order.length;
    double top = logits[best] / (double) config.temperature(), total = 0;
    double[] p = new double[kept];
    for (int i = 0; i < kept; i++) {
      p[i] = Math.exp(logits[order[i]] / (double) config.temperature() - top);
      total += p[i];
    }
    if (config.topP() < 1) { // the shortest prefix whose probability reaches top-p
      double cumulative = 0;
      int n = 0;
      while (n < kept && (n == 0 || cumulative < config.topP() * total)) {
        cumulative += p[n++];
      }
      kept = n;
      total = cumulative;
    }
    double u = random.nextDouble() * total;
    for (int i = 0; i < kept; i++) {
      u -= p[i];
      if (u < 0) {
        return order[i];
      }
    }
    return order[kept - 1]; // u rounded past the last: the last kept token
  }

  /**
   * The ids by logit, largest first, ties to the lowest id: one primitive sort of keys that hold
   * the logit's order in the high half and the id in the low half (no boxing for a vocabulary of
   * 150k).
   */
  static int[] byLogit(float[] logits) {
    long[] keys = new long[logits.length];
    for (int i = 0; i < keys.length; i++) {
      int bits = Float.floatToIntBits(-logits[i] + 0f); // + 0f: -0 and 0 sort alike
      int ordered = bits < 0 ? bits ^ 0x7fffffff : bits; // the float's order as a signed int
      keys[i] = (long) ordered << 32 | i;
    }
    Arrays.sort(keys);
    int[] order = new int[keys.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = (int) keys[i];
    }
    return order;
  }

  /** The index of the largest value, the lowest on ties; NaN and +inf are refused. */
  static int argmax(float[] logits) {
    int best = 0;
    for (int i = 0; i < logits.length; i++) {
      if (Float.isNaN(logits[i]) || logits[i] == Float.POSITIVE_INFINITY) {
        throw new IllegalArgumentException("logits: value " + logits[i] + " at " + i + " (expected finite or -inf)");
      }
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    if (logits[best] == Float.NEGATIVE_INFINITY) {
      throw new IllegalArgumentException("logits: every value is -inf");
    }
    return best;
  }
}
