package dev.plora.lora;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PEFT's rules for picking modules by name, in one place: {@code target_modules},
 * {@code layers_to_transform} and the keys of {@code rank_pattern} / {@code alpha_pattern}.
 * Patterns are Java regular expressions, which agree with Python's for the usual names, dots,
 * classes and alternations.
 */
public final class ModulePatterns {
  private ModulePatterns() {}

  /**
   * PEFT's {@code target_modules} given as names: the module's path equals a name or ends with
   * "." + name ({@code q_proj} picks {@code model.layers.0.self_attn.q_proj}).
   */
  public static boolean matchesName(List<String> names, String path) {
    for (String name : names) {
      if (path.equals(name) || path.endsWith("." + name)) {
        return true;
      }
    }
    return false;
  }

  /** PEFT's {@code target_modules} given as one string: a regular expression matching the whole path. */
  public static boolean matchesRegex(Pattern regex, String path) {
    return regex.matcher(path).matches();
  }

  /**
   * PEFT's {@code get_pattern_key}: the first key K (in order) with {@code path} = {@code (.*\.)?(K)},
   * or null when none matches.
   */
  public static String patternKey(Iterable<String> keys, String path) {
    for (String key : keys) {
      if (Pattern.compile("(.*\\.)?(" + key + ")").matcher(path).matches()) {
        return key;
      }
    }
    return null;
  }

  /**
   * The layer index in a path, for {@code layers_to_transform}: the number after the last
   * segment named by {@code layersPattern} ({@code model.layers.3.mlp.up_proj} → 3), or, with no
   * pattern, the last number that follows another segment. -1 when the path has none.
   */
  public static int layerIndex(List<String> layersPattern, String path) {
    String segment = layersPattern.isEmpty() ? "[^.]+"
        : "(?:" + String.join("|", layersPattern.stream().map(Pattern::quote).toList()) + ")";
    Matcher m = Pattern.compile("(?:.*\\.)?" + segment + "\\.(\\d+)(?:\\..*)?").matcher(path);
    if (!m.matches()) {
      return -1;
    }
    try {
      return Integer.parseInt(m.group(1));
    } catch (NumberFormatException e) {
      return -1; // more digits than any model has layers
    }
  }
}
