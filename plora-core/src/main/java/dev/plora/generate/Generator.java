package dev.plora.generate;

import dev.plora.model.KvCache;
import dev.plora.model.llama.LlamaForCausalLM;
import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Text generation with a key/value cache: the prompt's tokens go through the model at once
 * (prefill), then one new token per step, each attending to the cache
 * ({@link LlamaForCausalLM#decode}), picked by a {@link Sampler}. The model runs in evaluation
 * mode (no adapter dropout) and is put back in its mode afterwards; adapters injected into it take
 * part as in training. Token ids in and out: tokenization is the caller's.
 */
public final class Generator {
  /** Why generation ended. */
  public enum StopReason {
    /** A stop token (kept as the last token). */
    STOP_TOKEN,
    /** maxNewTokens were made. */
    MAX_NEW_TOKENS
  }

  /** What a run made: the new tokens (without the prompt), why it ended, and its timings. */
  public record Result(int[] tokens, StopReason stopReason, Stats stats) {}

  /** Tokens and wall-clock nanoseconds of the prefill and of the decoding steps. */
  public record Stats(int promptTokens, int newTokens, long prefillNanos, long decodeNanos) {
    /** Prompt tokens per second of the prefill. */
    public double prefillTokensPerSecond() {
      return promptTokens * 1e9 / Math.max(prefillNanos, 1);
    }

    /**
     * New tokens per second of the decoding steps; the first new token comes from the prefill's
     * logits, so {@code newTokens - 1} steps ran.
     */
    public double decodeTokensPerSecond() {
      return Math.max(newTokens - 1, 0) * 1e9 / Math.max(decodeNanos, 1);
    }
  }

  private final LlamaForCausalLM model;
  private final GenerationConfig config;

  public Generator(LlamaForCausalLM model, GenerationConfig config) {
    if (model == null || config == null) {
      throw new IllegalArgumentException("model and config: must not be null");
    }
    this.model = model;
    this.config = config;
  }

  /** {@link #generate(int[], IntConsumer)} without a callback. */
  public Result generate(int[] prompt) {
    return generate(prompt, t -> {});
  }

  /**
   * Continues {@code prompt} (at least one token id) until a stop token or maxNewTokens;
   * {@code onToken} is called with each new token as soon as it is picked (a stop token too).
   */
  public Result generate(int[] prompt, IntConsumer onToken) {
    if (prompt == null || prompt.length == 0) {
      throw new IllegalArgumentException("prompt: expected at least one token id");
    }
    if (onToken == null) {
      throw new IllegalArgumentException("onToken: must not be null");
    }
    int vocab = model.config().vocabSize();
    for (int i = 0; i < prompt.length; i++) {
      if (prompt[i] < 0 || prompt[i] >= vocab) {
        throw new IllegalArgumentException("prompt: token " + prompt[i] + " at " + i + " is not in [0, " + vocab + ")");
      }
    }
    Sampler sampler = new Sampler(config);
    boolean training = model.isTraining();
    model.train(false);
    try (KvCache cache = model.newCache(prompt.length + config.maxNewTokens())) {
      long start = System.nanoTime();
      float[] logits = model.decode(prompt, cache);
      long prefill = System.nanoTime() - start;
      start = System.nanoTime();
      int[] tokens = new int[config.maxNewTokens()];
      int made = 0;
      StopReason reason = StopReason.MAX_NEW_TOKENS;
      while (true) {
        int token = sampler.sample(logits);
        tokens[made++] = token;
        onToken.accept(token);
        if (config.stopTokenIds().contains(token)) {
          reason = StopReason.STOP_TOKEN;
          break;
        }
        if (made == tokens.length) {
          break;
        }
        logits = model.decode(new int[] {token}, cache);
      }
      long decode = System.nanoTime() - start;
      return new Result(Arrays.copyOf(tokens, made), reason, new Stats(prompt.length, made, prefill, decode));
    } finally {
      model.train(training);
    }
  }
}
