package dev.plora.io;

import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraAdapter;
import dev.plora.lora.ModulePatterns;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * PEFT's LoRA adapter format: a folder with {@code adapter_config.json} and
 * {@code adapter_model.safetensors} holding {@code base_model.model.<module>.lora_A.weight [r, in]}
 * and {@code …lora_B.weight [out, r]} (metadata {@code {"format": "pt"}}). The update a module
 * receives is {@code scaling · B · A}, scaling = alpha / r (or alpha / √r with rsLoRA), with the
 * module's own r and alpha where rank_pattern / alpha_pattern name it. Adapters that are not plain
 * LoRA (DoRA, trained biases, replaced modules, …) are refused by the field that says so.
 */
public final class PeftAdapter {
  public static final String CONFIG = "adapter_config.json";
  public static final String WEIGHTS = "adapter_model.safetensors";
  private static final String PREFIX = "base_model.model.";

  /** One adapted module: A [r, in] and B [out, r], row-major fp32. */
  public record Module(String name, int r, int in, int out, float[] a, float[] b) {
    public Module {
      if (a.length != (long) r * in || b.length != (long) out * r) {
        throw new IllegalArgumentException("module '" + name + "': A must hold r·in = " + (long) r * in
            + " and B out·r = " + (long) out * r + " values, got " + a.length + " and " + b.length);
      }
    }
  }

  /**
   * The adapter_config.json fields we read and write. {@code rankPattern} and {@code alphaPattern}
   * give modules their own r and alpha as PEFT does: a module takes the value of the first key K
   * for which its name matches the regular expression {@code (.*\.)?(K)} whole (K itself, or K
   * after a dot), else {@code r} and {@code loraAlpha}. Keys are Java regular expressions, which
   * read names, dots, classes, alternations and quantifiers as Python's do.
   */
  public record Config(int r, double loraAlpha, double loraDropout, boolean useRslora, List<String> targetModules,
      Map<String, Integer> rankPattern, Map<String, Double> alphaPattern) {
    /** PEFT's lora_alpha when a config has none. */
    public static final double DEFAULT_ALPHA = 8;

    public Config {
      rankPattern = Collections.unmodifiableMap(new LinkedHashMap<>(rankPattern));
      alphaPattern = Collections.unmodifiableMap(new LinkedHashMap<>(alphaPattern));
    }

    /** A config without patterns: every module has rank r and alpha loraAlpha. */
    public Config(int r, double loraAlpha, double loraDropout, boolean useRslora, List<String> targetModules) {
      this(r, loraAlpha, loraDropout, useRslora, targetModules, Map.of(), Map.of());
    }

    /** The scaling of a module without a pattern: alpha / r, or alpha / √r with rsLoRA. */
    public double scaling() {
      return scaling(r, loraAlpha);
    }

    public int rank(String module) {
      String key = ModulePatterns.patternKey(rankPattern.keySet(), module);
      return key == null ? r : rankPattern.get(key);
    }

    public double alpha(String module) {
      String key = ModulePatterns.patternKey(alphaPattern.keySet(), module);
      return key == null ? loraAlpha : alphaPattern.get(key);
    }

    /** The factor of {@code module}'s update B·A, from its own r and alpha. */
    public double scaling(String module) {
      return scaling(rank(module), alpha(module));
    }

    private double scaling(int rank, double alpha) {
      return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }
  }

  private final Config config;
  private final Map<String, Module> modules;

  private PeftAdapter(Config config, Map<String, Module> modules) {
    this.config = config;
    this.modules = modules;
  }

  public Config config() {
    return config;
  }

  /** Modules by name (e.g. "model.layers.0.self_attn.q_proj"), in file order. */
  public Map<String, Module> modules() {
    return modules;
  }

  /**
   * Where an adapter belongs, as PEFT records it: {@code base_model_name_or_path} (a hub id or a
   * folder) and {@code task_type} ("CAUSAL_LM" for a language model; null when not a PEFT task).
   */
  public record Origin(String baseModelNameOrPath, String taskType) {
    public static final Origin NONE = new Origin(null, null);

    /** A causal language model's adapter, trained on the model at {@code base}. */
    public static Origin causalLm(String base) {
      return new Origin(base, "CAUSAL_LM");
    }
  }

  /** Writes the two files into {@code dir} (created if needed), each atomically. */
  public static void write(Path dir, Config config, List<Module> modules, boolean overwrite) throws IOException {
    write(dir, config, modules, Origin.NONE, overwrite);
  }

  /** Writes the two files into {@code dir}, recording the adapter's {@code origin}. */
  public static void write(Path dir, Config config, List<Module> modules, Origin origin, boolean overwrite)
      throws IOException {
    Files.createDirectories(dir);
    for (Module m : modules) {
      if (m.r() != config.rank(m.name())) {
        throw new IllegalArgumentException("module '" + m.name() + "' has rank " + m.r() + ", the config gives it "
            + config.rank(m.name()));
      }
    }
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("peft_type", "LORA");
    json.put("task_type", origin.taskType());
    json.put("base_model_name_or_path", origin.baseModelNameOrPath());
    json.put("r", config.r());
    json.put("lora_alpha", config.loraAlpha());
    json.put("lora_dropout", config.loraDropout());
    json.put("target_modules", config.targetModules());
    json.put("use_rslora", config.useRslora());
    json.put("rank_pattern", config.rankPattern());
    json.put("alpha_pattern", config.alphaPattern());
    json.put("bias", "none");
    json.put("fan_in_fan_out", false);
    json.put("inference_mode", true);
    Path configFile = dir.resolve(CONFIG);
    AtomicFiles.requireWritable(configFile, overwrite);
    Map<String, float[]> values = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    for (Module m : modules) {
      values.put(PREFIX + m.name() + ".lora_A.weight", m.a());
      shapes.put(PREFIX + m.name() + ".lora_A.weight", new long[] {m.r(), m.in()});
      values.put(PREFIX + m.name() + ".lora_B.weight", m.b());
      shapes.put(PREFIX + m.name() + ".lora_B.weight", new long[] {m.out(), m.r()});
    }
    Safetensors.writeFloats(dir.resolve(WEIGHTS), values, shapes, Safetensors.Dtype.F32, Map.of("format", "pt"),
        overwrite);
    AtomicFiles.write(configFile, (Json.write(json) + "\n").getBytes(StandardCharsets.UTF_8), true);
  }

  /**
   * Saves a model's adapters ({@link dev.plora.lora.Lora#inject} gives them by module path) as a
   * PEFT adapter folder: the first adapter's r and alpha are the config's, the others' differing
   * ones go to rank_pattern / alpha_pattern under their exact paths, as PEFT writes them.
   */
  public static void save(Path dir, Map<String, LoraAdapter> adapters, boolean overwrite) throws IOException {
    save(dir, adapters, null, Origin.NONE, overwrite);
  }

  /**
   * As {@link #save(Path, Map, boolean)}, with {@code target_modules} as the user gave them (PEFT's
   * short names such as "q_proj", or null for the adapters' full paths) and the adapter's origin.
   */
  public static void save(Path dir, Map<String, LoraAdapter> adapters, List<String> targetModules, Origin origin,
      boolean overwrite) throws IOException {
    if (adapters == null || adapters.isEmpty()) {
      throw new IllegalArgumentException("adapters: expected at least one");
    }
    LoraConfig first = adapters.values().iterator().next().config();
    Map<String, Integer> rankPattern = new LinkedHashMap<>();
    Map<String, Double> alphaPattern = new LinkedHashMap<>();
    List<Module> modules = new ArrayList<>();
    for (Map.Entry<String, LoraAdapter> e : adapters.entrySet()) {
      LoraConfig c = e.getValue().config();
      if (c.rsLora() != first.rsLora()) {
        throw new IllegalArgumentException("adapters: '" + e.getKey() + "' has rsLora " + c.rsLora() + ", the first "
            + first.rsLora() + "; a PEFT config has one use_rslora");
      }
      String key = e.getKey().replace(".", "\\.");
      if (c.r() != first.r()) {
        rankPattern.put(key, c.r());
      }
      if (c.alpha() != first.alpha()) {
        alphaPattern.put(key, (double) c.alpha());
      }
      LoraAdapter l = e.getValue();
      modules.add(new Module(e.getKey(), l.r(), l.masterA().cols(), l.masterB().rows(), l.masterA().toFloatArray(),
          l.masterB().toFloatArray()));
    }
    write(dir, new Config(first.r(), first.alpha(), first.dropout(), first.rsLora(),
        targetModules != null ? targetModules : List.copyOf(adapters.keySet()), rankPattern, alphaPattern), modules,
        origin, overwrite);
  }

  /**
   * Loads a PEFT adapter folder into a model's adapters, by module path. Every module of the folder
   * and of {@code adapters} must pair up with the same shapes and scaling; all is checked before
   * the first adapter is written.
   */
  public static void load(Path dir, Map<String, LoraAdapter> adapters) throws IOException {
    PeftAdapter peft = read(dir);
    if (!peft.modules().keySet().equals(adapters.keySet())) {
      List<String> missing = new ArrayList<>(adapters.keySet());
      missing.removeAll(peft.modules().keySet());
      List<String> extra = new ArrayList<>(peft.modules().keySet());
      extra.removeAll(adapters.keySet());
      throw new IllegalArgumentException(dir + ": its modules differ from the model's adapters (missing " + missing
          + ", not in the model " + extra + ")");
    }
    for (Map.Entry<String, LoraAdapter> e : adapters.entrySet()) {
      Module m = peft.modules().get(e.getKey());
      LoraAdapter l = e.getValue();
      int in = l.masterA().cols(), out = l.masterB().rows();
      if (m.r() != l.r() || m.in() != in || m.out() != out) {
        throw new IllegalArgumentException(dir + ": module '" + e.getKey() + "' has r " + m.r() + ", [out, in] = ["
            + m.out() + ", " + m.in() + "]; the model's adapter has r " + l.r() + ", [" + out + ", " + in + "]");
      }
      double scaling = peft.config().scaling(e.getKey());
      if (Math.abs(scaling - l.scaling()) > 1e-6 * Math.abs(scaling)) {
        throw new IllegalArgumentException(dir + ": module '" + e.getKey() + "' has scaling " + scaling
            + ", the model's adapter " + l.scaling());
      }
    }
    for (Map.Entry<String, LoraAdapter> e : adapters.entrySet()) {
      Module m = peft.modules().get(e.getKey());
      e.getValue().masterA().copyFrom(m.a());
      e.getValue().masterB().copyFrom(m.b());
      e.getValue().sync();
    }
  }

  /**
   * Injects the adapter folder {@code dir} into {@code model} as PEFT's {@code PeftModel.from_pretrained}
   * does: adapters on the modules its config targets (with its r, alpha, patterns and rsLoRA,
   * dropout off), then its weights loaded. A folder that does not match the model — a module
   * missing, another shape, a module the targets name that the folder lacks — is refused naming
   * the folder and the module, with the model as it was.
   */
  public static Map<String, LoraAdapter> apply(dev.plora.model.Module model, Path dir) throws IOException {
    PeftAdapter peft = read(dir);
    Config c = peft.config();
    Map<String, Float> alphas = new LinkedHashMap<>();
    c.alphaPattern().forEach((k, v) -> alphas.put(k, v.floatValue()));
    LoraConfig config = LoraConfig.builder().r(c.r()).alpha((float) c.loraAlpha()).rsLora(c.useRslora())
        .targetModules(c.targetModules()).rankPattern(c.rankPattern()).alphaPattern(alphas).build();
    List<String> targeted = new ArrayList<>();
    model.modules().forEach((path, m) -> {
      if (m instanceof dev.plora.model.Linear l && config.targets(path, path.equals(model.outputHead()))) {
        targeted.add(path);
        Module saved = peft.modules().get(path);
        if (saved != null && (saved.out() != l.weight().rows() || saved.in() != l.weight().cols())) {
          throw new IllegalArgumentException(dir + ": module '" + path + "' is [out, in] = [" + saved.out() + ", "
              + saved.in() + "] in the adapter but " + l.weight().shape() + " in the model");
        }
      }
    });
    if (!new java.util.HashSet<>(targeted).equals(peft.modules().keySet())) {
      List<String> missing = new ArrayList<>(targeted);
      missing.removeAll(peft.modules().keySet());
      List<String> extra = new ArrayList<>(peft.modules().keySet());
      extra.removeAll(targeted);
      throw new IllegalArgumentException(dir + ": the adapter does not fit the model: its target_modules "
          + c.targetModules() + " name " + (missing.isEmpty() ? "" : missing.size() + " modules it has no weights for "
          + abbreviate(missing)) + (missing.isEmpty() || extra.isEmpty() ? "" : ", and ")
          + (extra.isEmpty() ? "" : "it has weights for " + extra.size() + " modules the model lacks "
          + abbreviate(extra)));
    }
    Map<String, LoraAdapter> adapters = dev.plora.lora.Lora.inject(model, config);
    load(dir, adapters); // shapes, ranks and scalings checked against the folder before a weight is written
    return adapters;
  }

  private static String abbreviate(List<String> names) {
    return names.size() <= 4 ? names.toString() : names.subList(0, 4) + " and " + (names.size() - 4) + " more";
  }

  /** Reads and checks an adapter folder: config fields, key names, shapes, ranks. */
  public static PeftAdapter read(Path dir) throws IOException {
    Path configFile = dir.resolve(CONFIG);
    if (!Files.isRegularFile(configFile)) {
      throw new IllegalArgumentException(dir + ": no " + CONFIG + " (not a PEFT adapter folder)");
    }
    Object parsed;
    try {
      parsed = Json.parse(Json.readSmallFile(configFile, MAX_CONFIG_BYTES, "an adapter config"));
    } catch (Json.JsonException e) {
      throw new IllegalArgumentException(configFile + ": " + e.getMessage());
    }
    if (!(parsed instanceof Map<?, ?> json)) {
      throw new IllegalArgumentException(configFile + ": expected a JSON object");
    }
    if (!"LORA".equals(json.get("peft_type"))) {
      throw new IllegalArgumentException(configFile + ": peft_type is " + json.get("peft_type") + ", expected LORA");
    }
    refuseVariants(configFile, json);
    int r = integer(configFile, json, "r");
    double alpha = number(configFile, json, "lora_alpha", Config.DEFAULT_ALPHA);
    double dropout = number(configFile, json, "lora_dropout", 0);
    boolean rslora = Boolean.TRUE.equals(json.get("use_rslora"));
    List<String> targets = new ArrayList<>();
    if (json.get("target_modules") instanceof List<?> list) {
      list.forEach(t -> targets.add(String.valueOf(t)));
    }
    Map<String, Integer> rankPattern = new LinkedHashMap<>();
    pattern(configFile, json, "rank_pattern").forEach((k, v) -> rankPattern.put(k, positiveInteger(configFile,
        "rank_pattern: value of '" + k + "'", v)));
    Map<String, Double> alphaPattern = new LinkedHashMap<>();
    pattern(configFile, json, "alpha_pattern").forEach((k, v) -> alphaPattern.put(k, number(configFile,
        "alpha_pattern: value of '" + k + "'", v)));
    Config config = new Config(r, alpha, dropout, rslora, targets, rankPattern, alphaPattern);
    Map<String, Module> modules = new LinkedHashMap<>();
    try (Safetensors.Reader weights = Safetensors.open(dir.resolve(WEIGHTS))) {
      Map<String, Safetensors.Entry> as = new LinkedHashMap<>(), bs = new LinkedHashMap<>();
      for (Safetensors.Entry e : weights.entries()) {
        String name = e.name();
        if (name.startsWith(PREFIX) && name.endsWith(".lora_A.weight")) {
          as.put(name.substring(PREFIX.length(), name.length() - ".lora_A.weight".length()), e);
        } else if (name.startsWith(PREFIX) && name.endsWith(".lora_B.weight")) {
          bs.put(name.substring(PREFIX.length(), name.length() - ".lora_B.weight".length()), e);
        } else if (name.endsWith(".bias") && json.get("bias") != null && !"none".equals(json.get("bias"))) {
          throw new IllegalArgumentException(weights.file() + ": tensor '" + name + "': bias is "
              + Json.write(json.get("bias")) + ", so the adapter carries trained biases, which a merge of W + s·B·A "
              + "leaves out: not supported");
        } else {
          throw new IllegalArgumentException(weights.file() + ": tensor '" + name + "' is not a PEFT LoRA weight");
        }
      }
      for (String module : as.keySet()) {
        Safetensors.Entry a = as.get(module), b = bs.get(module);
        if (b == null) {
          throw new IllegalArgumentException(weights.file() + ": module '" + module + "' has lora_A but no lora_B");
        }
        int rank = config.rank(module);
        if (a.shape().length != 2 || b.shape().length != 2 || a.shape()[0] != rank || b.shape()[1] != rank) {
          String key = ModulePatterns.patternKey(rankPattern.keySet(), module);
          throw new IllegalArgumentException(weights.file() + ": module '" + module + "': lora_A "
              + java.util.Arrays.toString(a.shape()) + " and lora_B " + java.util.Arrays.toString(b.shape())
              + " do not fit r = " + rank + (key != null ? " (rank_pattern key '" + key + "')"
              : " (the config's r: no rank_pattern key matches)") + "; expected [r, in] and [out, r]");
        }
        modules.put(module, new Module(module, rank, (int) a.shape()[1], (int) b.shape()[0], weights.floats(a.name()),
            weights.floats(b.name())));
      }
      for (String module : bs.keySet()) {
        if (!as.containsKey(module)) {
          throw new IllegalArgumentException(weights.file() + ": module '" + module + "' has lora_B but no lora_A");
        }
      }
    }
    return new PeftAdapter(config, modules);
  }

  /**
   * Refuses configs whose adapter is not merged as W + s·B·A into BASE: other PEFT variants and
   * options that change the math, carry more than A and B, or were trained on changed weights.
   */
  private static void refuseVariants(Path file, Map<?, ?> json) {
    String[][] refused = {
        {"use_dora", "DoRA also rescales each column of the merged weight by a trained magnitude"},
        {"fan_in_fan_out", "the base weights are stored [in, out] (Conv1D)"},
        {"lora_bias", "lora_B carries a bias, which merges into the layer's bias"},
        {"use_qalora", "QALoRA applies A to pooled inputs"},
        {"alora_invocation_tokens", "aLoRA acts only after its invocation tokens, so it cannot be merged"},
        {"layer_replication", "the adapted model repeats base layers"},
        {"modules_to_save", "the adapter carries whole trained modules that replace the base's"},
        {"trainable_token_indices", "the adapter carries trained embedding rows that replace the base's"},
        {"target_parameters", "LoRA on parameters (not modules) is laid out differently"},
        {"use_bdlora", "BD-LoRA's factors are block-diagonal"},
        {"arrow_config", "Arrow routes between several adapters per input"}};
    for (String[] r : refused) {
      Object v = json.get(r[0]);
      if (v != null && !Boolean.FALSE.equals(v) && !(v instanceof List<?> l && l.isEmpty())
          && !(v instanceof Map<?, ?> m && m.isEmpty())) {
        throw new IllegalArgumentException(file + ": " + r[0] + " is " + Json.write(v) + ": not supported ("
            + r[1] + "); only plain LoRA merges as W + s·B·A");
      }
    }
    Object bias = json.get("bias");
    if (bias != null && !Set.of("none", "all", "lora_only").contains(bias)) {
      throw new IllegalArgumentException(file + ": bias is " + Json.write(bias) + ", expected \"none\", \"all\" or "
          + "\"lora_only\"");
    }
    if (json.get("init_lora_weights") instanceof String init
        && (init.startsWith("pissa") || Set.of("olora", "corda", "loftq", "lora_ga").contains(init))) {
      throw new IllegalArgumentException(file + ": init_lora_weights is \"" + init + "\": not supported (that "
          + "initialization changed the base weights, so the adapter applies to those, not to BASE; convert it with "
          + "PEFT's path_initial_model_for_weight_conversion first)");
    }
  }

  /** A pattern field (rank_pattern, alpha_pattern): an object whose keys are valid regular expressions. */
  private static Map<String, Object> pattern(Path file, Map<?, ?> json, String field) {
    Object v = json.get(field);
    if (v == null) {
      return Map.of();
    }
    if (!(v instanceof Map<?, ?> map)) {
      throw new IllegalArgumentException(file + ": " + field + " must be an object, got " + Json.write(v));
    }
    Map<String, Object> out = new LinkedHashMap<>();
    for (Map.Entry<?, ?> e : map.entrySet()) {
      String key = (String) e.getKey();
      try {
        Pattern.compile(key);
      } catch (PatternSyntaxException ex) {
        throw new IllegalArgumentException(file + ": " + field + ": key '" + key
            + "' is not a valid regular expression (" + ex.getDescription() + ")");
      }
      out.put(key, e.getValue());
    }
    return out;
  }

  /** Largest adapter_config.json read: real ones are a few KiB. */
  public static final long MAX_CONFIG_BYTES = 1 << 20;

  private static int integer(Path file, Map<?, ?> json, String key) {
    return positiveInteger(file, key, json.get(key));
  }

  private static int positiveInteger(Path file, String what, Object v) {
    if (!(v instanceof BigDecimal d) || d.signum() <= 0 || d.stripTrailingZeros().scale() > 0
        || d.compareTo(BigDecimal.valueOf(Integer.MAX_VALUE)) > 0) {
      throw new IllegalArgumentException(file + ": " + what + " must be a positive integer, got " + v);
    }
    return d.intValueExact();
  }

  private static double number(Path file, Map<?, ?> json, String key, double fallback) {
    Object v = json.get(key);
    return v == null ? fallback : number(file, key, v);
  }

  private static double number(Path file, String what, Object v) {
    if (!(v instanceof BigDecimal d)) {
      throw new IllegalArgumentException(file + ": " + what + " must be a number, got " + v);
    }
    return d.doubleValue();
  }
}
