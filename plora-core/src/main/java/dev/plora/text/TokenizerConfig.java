package dev.plora.text;

import dev.plora.io.Json;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * What a model folder says about its tokenizer beside tokenizer.json: special tokens, whether to
 * add BOS and EOS, the chat template, the longest input. From tokenizer_config.json, with
 * special_tokens_map.json for special tokens it leaves out and chat_template.jinja (newer
 * transformers save the template there) before its chat_template. Every file is optional.
 *
 * @param addBosToken null when not said: the post-processor of tokenizer.json decides
 * @param chatTemplate null when there is none
 */
record TokenizerConfig(String bosToken, String eosToken, String padToken, Boolean addBosToken,
    Boolean addEosToken, String chatTemplate, OptionalInt modelMaxLength, boolean cleanUpTokenizationSpaces) {

  static final String CONFIG = "tokenizer_config.json";
  static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";
  static final String CHAT_TEMPLATE = "chat_template.jinja";
  /** tokenizer_config.json holds a few tokens and a chat template: kilobytes, rarely a megabyte. */
  static final long MAX_CONFIG_BYTES = 16L << 20;

  static TokenizerConfig read(Path dir) throws IOException {
    Map<?, ?> config = readObject(dir.resolve(CONFIG));
    Map<?, ?> specials = readObject(dir.resolve(SPECIAL_TOKENS_MAP));
    Path configFile = dir.resolve(CONFIG);
    Path templateFile = dir.resolve(CHAT_TEMPLATE);
    String template = Files.isRegularFile(templateFile)
        ? Json.readSmallFile(templateFile, MAX_CONFIG_BYTES, "a chat template")
        : chatTemplate(configFile, config.get("chat_template"));
    return new TokenizerConfig(
        token(dir, config, specials, "bos_token"),
        token(dir, config, specials, "eos_token"),
        token(dir, config, specials, "pad_token"),
        flag(configFile, config, "add_bos_token"),
        flag(configFile, config, "add_eos_token"),
        template,
        maxLength(configFile, config.get("model_max_length")),
        Boolean.TRUE.equals(flag(configFile, config, "clean_up_tokenization_spaces")));
  }

  /** The JSON object of a file, or an empty one when the file is not there. */
  private static Map<?, ?> readObject(Path file) throws IOException {
    if (!Files.exists(file)) {
      return Map.of();
    }
    Object json;
    try {
      json = Json.parse(Json.readSmallFile(file, MAX_CONFIG_BYTES, "a tokenizer config"));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
    if (!(json instanceof Map<?, ?> map)) {
      throw new IllegalArgumentException(file + ": expected a JSON object");
    }
    return map;
  }

  /** A special token: a string or an AddedToken object {"content": ...}; the config's, else the map's. */
  private static String token(Path dir, Map<?, ?> config, Map<?, ?> specials, String key) {
    String own = tokenText(dir.resolve(CONFIG), key, config.get(key));
    return own != null ? own : tokenText(dir.resolve(SPECIAL_TOKENS_MAP), key, specials.get(key));
  }

  private static String tokenText(Path file, String key, Object value) {
    if (value == null || value instanceof String) {
      return (String) value;
    }
    if (value instanceof Map<?, ?> added && added.get("content") instanceof String content) {
      return content;
    }
    throw new IllegalArgumentException(file + ": " + key + " should be a string or {\"content\": ...}, got "
        + Json.write(value));
  }

  private static Boolean flag(Path file, Map<?, ?> config, String key) {
    Object value = config.get(key);
    if (value == null || value instanceof Boolean) {
      return (Boolean) value;
    }
    throw new IllegalArgumentException(file + ": " + key + " should be true or false, got " + Json.write(value));
  }

  /** A string, or a list of {name, template} of which Hugging Face takes "default". */
  private static String chatTemplate(Path file, Object value) {
    if (value == null || value instanceof String) {
      return (String) value;
    }
    if (value instanceof List<?> named) {
      for (Object entry : named) {
        if (entry instanceof Map<?, ?> m && "default".equals(m.get("name")) && m.get("template") instanceof String t) {
          return t;
        }
      }
      return null; // named templates only: none is the model's
    }
    throw new IllegalArgumentException(file + ": chat_template should be a string or a list of "
        + "{\"name\", \"template\"}, got " + Json.write(value));
  }

  /** Hugging Face writes 1e30 for "no limit"; anything past an int is no limit here too. */
  private static OptionalInt maxLength(Path file, Object value) {
    if (value == null) {
      return OptionalInt.empty();
    }
    if (!(value instanceof BigDecimal n) || n.signum() <= 0 || n.stripTrailingZeros().scale() > 0) {
      throw new IllegalArgumentException(file + ": model_max_length should be a positive integer, got "
          + Json.write(value));
    }
    return n.compareTo(BigDecimal.valueOf(Integer.MAX_VALUE)) > 0 ? OptionalInt.empty() : OptionalInt.of(n.intValue());
  }
}
