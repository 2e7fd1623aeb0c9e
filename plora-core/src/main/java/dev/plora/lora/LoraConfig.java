package dev.plora.lora;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Hyper-parameters of a LoRA adapter, with PEFT's names and defaults: rank {@code r} = 8,
 * {@code alpha} = 8, {@code dropout} = 0, scaling {@code alpha / r} (or {@code alpha / √r} with
 * {@code rsLora}), A initialised Kaiming-uniform and B = 0. Validated when built.
 */
public final class LoraConfig {
  /** How A is initialised (B always starts at zero, so the adapter starts as the identity). */
  public enum Init {
    /** U(−1/√K, 1/√K): PyTorch's Kaiming-uniform with a = √5, PEFT's default. */
    KAIMING_UNIFORM,
    /** N(0, 1/r): PEFT's "gaussian". */
    GAUSSIAN
  }

  private final int r;
  private final float alpha;
  private final float dropout;
  private final boolean rsLora;
  private final Init init;
  private final long seed;
  private final List<String> targetModules;
  private final String targetModulesRegex;
  private final Pattern targetPattern; // compiled once: targets() runs for every module of a model
  private final List<Integer> layersToTransform;
  private final List<String> layersPattern;
  private final Map<String, Integer> rankPattern;
  private final Map<String, Float> alphaPattern;

  /** The {@code target_modules} value that picks every linear module but the model's output head. */
  public static final String ALL_LINEAR = "all-linear";

  private LoraConfig(Builder b) {
    this.r = b.r;
    this.alpha = b.alpha;
    this.dropout = b.dropout;
    this.rsLora = b.rsLora;
    this.init = b.init;
    this.seed = b.seed;
    this.targetModules = List.copyOf(b.targetModules);
    this.targetModulesRegex = b.targetModulesRegex;
    this.targetPattern = b.targetModulesRegex == null ? null : Pattern.compile(b.targetModulesRegex);
    this.layersToTransform = List.copyOf(b.layersToTransform);
    this.layersPattern = List.copyOf(b.layersPattern);
    this.rankPattern = Collections.unmodifiableMap(new LinkedHashMap<>(b.rankPattern));
    this.alphaPattern = Collections.unmodifiableMap(new LinkedHashMap<>(b.alphaPattern));
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder starting from this configuration. */
  public Builder toBuilder() {
    return new Builder().r(r).alpha(alpha).dropout(dropout).rsLora(rsLora).init(init).seed(seed)
        .targetModules(targetModules).targetModulesRegex(targetModulesRegex).layersToTransform(layersToTransform)
        .layersPattern(layersPattern).rankPattern(rankPattern).alphaPattern(alphaPattern);
  }

  public int r() {
    return r;
  }

  public float alpha() {
    return alpha;
  }

  public float dropout() {
    return dropout;
  }

  public boolean rsLora() {
    return rsLora;
  }

  public Init init() {
    return init;
  }

  /** Seed of the Philox streams for inits and dropout masks. */
  public long seed() {
    return seed;
  }

  /** Module names (PEFT's list form of {@code target_modules}), possibly {@value #ALL_LINEAR}; empty if unset. */
  public List<String> targetModules() {
    return targetModules;
  }

  /** PEFT's string form of {@code target_modules}: a regex matching whole module paths; null if unset. */
  public String targetModulesRegex() {
    return targetModulesRegex;
  }

  /** Layer indices to adapt (PEFT's {@code layers_to_transform}); empty for all layers. */
  public List<Integer> layersToTransform() {
    return layersToTransform;
  }

  /** Names of the segment before the layer index (PEFT's {@code layers_pattern}); empty for any. */
  public List<String> layersPattern() {
    return layersPattern;
  }

  /** Per-module ranks by pattern key (PEFT's {@code rank_pattern}); the first matching key wins. */
  public Map<String, Integer> rankPattern() {
    return rankPattern;
  }

  /** Per-module alphas by pattern key (PEFT's {@code alpha_pattern}). */
  public Map<String, Float> alphaPattern() {
    return alphaPattern;
  }

  /** True when the module at {@code path} is named by the targets and its layer is one to transform. */
  public boolean targets(String path, boolean isOutputHead) {
    boolean named;
    if (targetPattern != null) {
      named = ModulePatterns.matchesRegex(targetPattern, path);
    } else if (targetModules.equals(List.of(ALL_LINEAR))) {
      named = !isOutputHead;
    } else {
      named = ModulePatterns.matchesName(targetModules, path);
    }
    if (!named || layersToTransform.isEmpty()) {
      return named;
    }
    return layersToTransform.contains(ModulePatterns.layerIndex(layersPattern, path));
  }

  /** The configuration of the adapter at {@code path}: r and alpha from the patterns, targets dropped. */
  public LoraConfig forModule(String path) {
    String rankKey = ModulePatterns.patternKey(rankPattern.keySet(), path);
    String alphaKey = ModulePatterns.patternKey(alphaPattern.keySet(), path);
    return new Builder().r(rankKey == null ? r : rankPattern.get(rankKey))
        .alpha(alphaKey == null ? alpha : alphaPattern.get(alphaKey)).dropout(dropout).rsLora(rsLora).init(init)
        .seed(seed).build();
  }

  /** The factor s of the update s·B·A: alpha / r, or alpha / √r with rsLoRA. */
  public float scaling() {
    return rsLora ? (float) (alpha / Math.sqrt(r)) : alpha / r;
  }

  @Override
  public String toString() {
    return "LoraConfig{r=" + r + ", alpha=" + alpha + ", dropout=" + dropout + ", rsLora=" + rsLora + ", init="
        + init + ", seed=" + seed + (targetModulesRegex != null ? ", targetModules='" + targetModulesRegex + "'"
        : targetModules.isEmpty() ? "" : ", targetModules=" + targetModules)
        + (layersToTransform.isEmpty() ? "" : ", layersToTransform=" + layersToTransform)
        + (rankPattern.isEmpty() ? "" : ", rankPattern=" + rankPattern)
        + (alphaPattern.isEmpty() ? "" : ", alphaPattern=" + alphaPattern) + "}";
  }

  public static final class Builder {
    private int r = 8;
    private float alpha = 8f;
    private float dropout = 0f;
    private boolean rsLora;
    private Init init = Init.KAIMING_UNIFORM;
    private long seed;
    private List<String> targetModules = List.of();
    private String targetModulesRegex;
    private List<Integer> layersToTransform = List.of();
    private List<String> layersPattern = List.of();
    private Map<String, Integer> rankPattern = Map.of();
    private Map<String, Float> alphaPattern = Map.of();

    private Builder() {}

    /** Modules to adapt by name (a path equals it or ends with "." + it), or {@value #ALL_LINEAR}. */
    public Builder targetModules(String... names) {
      return targetModules(names == null ? null : Arrays.asList(names));
    }

    public Builder targetModules(List<String> names) {
      this.targetModules = names;
      return this;
    }

    /** Modules to adapt by a regular expression that matches their whole path. */
    public Builder targetModulesRegex(String regex) {
      this.targetModulesRegex = regex;
      return this;
    }

    public Builder layersToTransform(Integer... layers) {
      return layersToTransform(layers == null ? null : Arrays.asList(layers));
    }

    public Builder layersToTransform(List<Integer> layers) {
      this.layersToTransform = layers;
      return this;
    }

    public Builder layersPattern(String... names) {
      return layersPattern(names == null ? null : Arrays.asList(names));
    }

    public Builder layersPattern(List<String> names) {
      this.layersPattern = names;
      return this;
    }

    /** Ranks by pattern key, tried in the map's order. */
    public Builder rankPattern(Map<String, Integer> pattern) {
      this.rankPattern = pattern;
      return this;
    }

    /** Alphas by pattern key, tried in the map's order. */
    public Builder alphaPattern(Map<String, Float> pattern) {
      this.alphaPattern = pattern;
      return this;
    }

    public Builder r(int r) {
      this.r = r;
      return this;
    }

    public Builder alpha(float alpha) {
      this.alpha = alpha;
      return this;
    }

    public Builder dropout(float dropout) {
      this.dropout = dropout;
      return this;
    }

    public Builder rsLora(boolean rsLora) {
      this.rsLora = rsLora;
      return this;
    }

    public Builder init(Init init) {
      this.init = init;
      return this;
    }

    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** Validates every field and reports all that are wrong in one exception. */
    public LoraConfig build() {
      List<String> problems = new ArrayList<>();
      if (r < 1) {
        problems.add("r: expected >= 1, got " + r);
      }
      if (!(Float.isFinite(alpha) && alpha > 0)) {
        problems.add("alpha: expected a finite value > 0, got " + alpha);
      }
      if (!(dropout >= 0 && dropout < 1)) {
        problems.add("dropout: expected 0 <= dropout < 1, got " + dropout);
      }
      if (init == null) {
        problems.add("init: must not be null");
      }
      if (targetModules == null || targetModules.stream().anyMatch(Objects::isNull)) {
        problems.add("targetModules: must not be or hold null");
      } else if (targetModules.contains(ALL_LINEAR) && targetModules.size() > 1) {
        problems.add("targetModules: " + ALL_LINEAR + " stands alone, got " + targetModules);
      }
      if (targetModulesRegex != null) {
        requireRegex(problems, "targetModulesRegex", targetModulesRegex);
        if (targetModules != null && !targetModules.isEmpty()) {
          problems.add("targetModules: give names or a regex, not both");
        }
      }
      if (layersToTransform == null || layersToTransform.stream().anyMatch(l -> l == null || l < 0)) {
        problems.add("layersToTransform: expected layer indices >= 0, got " + layersToTransform);
      }
      if (layersPattern == null || layersPattern.stream().anyMatch(Objects::isNull)) {
        problems.add("layersPattern: must not be or hold null");
      }
      if (rankPattern == null) {
        problems.add("rankPattern: must not be null");
      } else {
        rankPattern.forEach((key, value) -> {
          requireRegex(problems, "rankPattern key", key);
          if (value == null || value < 1) {
            problems.add("rankPattern['" + key + "']: expected r >= 1, got " + value);
          }
        });
      }
      if (alphaPattern == null) {
        problems.add("alphaPattern: must not be null");
      } else {
        alphaPattern.forEach((key, value) -> {
          requireRegex(problems, "alphaPattern key", key);
          if (value == null || !(Float.isFinite(value) && value > 0)) {
            problems.add("alphaPattern['" + key + "']: expected a finite alpha > 0, got " + value);
          }
        });
      }
      if (!problems.isEmpty()) {
        throw new IllegalArgumentException("invalid LoraConfig: " + String.join("; ", problems));
      }
      return new LoraConfig(this);
    }

    private static void requireRegex(List<String> problems, String what, String regex) {
      if (regex == null) {
        problems.add(what + ": must not be null");
        return;
      }
      try {
        Pattern.compile(regex);
      } catch (PatternSyntaxException e) {
        problems.add(what + ": '" + regex + "' is not a regular expression (" + e.getDescription() + ")");
      }
    }
  }
}
