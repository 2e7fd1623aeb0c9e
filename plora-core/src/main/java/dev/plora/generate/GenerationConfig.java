package dev.plora.generate;

import dev.plora.io.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How to pick tokens, with Hugging Face's names: {@code maxNewTokens}; {@code temperature} (0: greedy,
 * the most likely token, ties to the lowest id); {@code topK} (0: off) and {@code topP} (1: off),
 * nucleus sampling over the tokens left by top-k; {@code seed} of the draws (same seed, same
 * tokens); {@code stopTokenIds}, the tokens that end generation (EOS and generation_config.json's
 * {@code eos_token_id}), which are kept as the last token.
 */
public record GenerationConfig(int maxNewTokens, float temperature, int topK, float topP, long seed,
    Set<Integer> stopTokenIds) {
  private static final long MAX_CONFIG_BYTES = 1 << 20;

  public GenerationConfig {
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("maxNewTokens: expected at least 1, got " + maxNewTokens);
    }
    if (!(temperature >= 0) || Float.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature: expected a finite value >= 0, got " + temperature);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("topK: expected >= 0 (0 is off), got " + topK);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("topP: expected in (0, 1] (1 is off), got " + topP);
    }
    if (stopTokenIds == null || stopTokenIds.stream().anyMatch(id -> id == null)) {
      throw new IllegalArgumentException("stopTokenIds: expected a set of token ids, got " + stopTokenIds);
    }
    stopTokenIds = Set.copyOf(stopTokenIds);
  }

  /** Greedy decoding of up to {@code maxNewTokens} tokens, no stop tokens. */
  public static GenerationConfig greedy(int maxNewTokens) {
    return new GenerationConfig(maxNewTokens, 0f, 0, 1f, 0, Set.of());
  }

  /** Sampling at {@code temperature} with neither top-k nor top-p. */
  public static GenerationConfig sampling(int maxNewTokens, float temperature, long seed) {
    return new GenerationConfig(maxNewTokens, temperature, 0, 1f, seed, Set.of());
  }

  public GenerationConfig withTopK(int k) {
    return new GenerationConfig(maxNewTokens, temperature, k, topP, seed, stopTokenIds);
  }

  public GenerationConfig withTopP(float p) {
    return new GenerationConfig(maxNewTokens, temperature, topK, p, seed, stopTokenIds);
  }

  public GenerationConfig withSeed(long s) {
    return new GenerationConfig(maxNewTokens, temperature, topK, topP, s, stopTokenIds);
  }

  public GenerationConfig withStopTokenIds(Set<Integer> ids) {
    return new GenerationConfig(maxNewTokens, temperature, topK, topP, seed, ids);
  }

  /** True when every step takes the most likely token. */
  public boolean isGreedy() {
    return temperature == 0 || topK == 1;
  }

  /**
   * The {@code eos_token_id} of a model folder's generation_config.json and then config.json (an
   * id or a list of ids; both files optional): the stop tokens Hugging Face's generate uses.
   */
  public static Set<Integer> eosTokenIds(Path modelDir) throws IOException {
    Set<Integer> ids = new LinkedHashSet<>();
    for (String name : List.of("generation_config.json", "config.json")) {
      Path file = modelDir.resolve(name);
      if (!Files.isRegularFile(file)) {
        continue;
      }
      Object json = Json.parse(Json.readSmallFile(file, MAX_CONFIG_BYTES, "a model config"));
      Object eos = json instanceof Map<?, ?> map ? map.get("eos_token_id") : null;
      for (Object id : eos instanceof List<?> list ? list : eos == null ? List.of() : List.of(eos)) {
        if (!(id instanceof Number n) || n.doubleValue() != n.intValue() || n.intValue() < 0) {
          throw new IllegalArgumentException(file + ": eos_token_id: expected a token id or a list of them, got "
              + eos);
        }
        ids.add(n.intValue());
      }
    }
    return ids;
  }
}
