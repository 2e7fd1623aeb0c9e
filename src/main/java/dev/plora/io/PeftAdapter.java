package dev.plora.io;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PEFT's LoRA adapter format: a folder with {@code adapter_config.json} and
 * {@code adapter_model.safetensors} holding {@code base_model.model.<module>.lora_A.weight [r, in]}
 * and {@code …lora_B.weight [out, r]} (metadata {@code {"format": "pt"}}). The update a module
 * receives is {@code scaling · B · A}, scaling = alpha / r (or alpha / √r with rsLoRA).
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

  /** The adapter_config.json fields we read and write. */
  public record Config(int r, double loraAlpha, double loraDropout, boolean useRslora, List<String> targetModules) {
    public double scaling() {
      return useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
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

  /** Writes the two files into {@code dir} (created if needed), each atomically. */
  public static void write(Path dir, Config config, List<Module> modules, boolean overwrite) throws IOException {
    Files.createDirectories(dir);
    for (Module m : modules) {
      if (m.r() != config.r()) {
        throw new IllegalArgumentException("module '" + m.name() + "' has rank " + m.r() + ", config r = " + config.r());
      }
    }
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("peft_type", "LORA");
    json.put("task_type", null);
    json.put("r", config.r());
    json.put("lora_alpha", config.loraAlpha());
    json.put("lora_dropout", config.loraDropout());
    json.put("target_modules", config.targetModules());
    json.put("use_rslora", config.useRslora());
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

  /** Reads and checks an adapter folder: config fields, key names, shapes, ranks. */
  public static PeftAdapter read(Path dir) throws IOException {
    Path configFile = dir.resolve(CONFIG);
    if (!Files.isRegularFile(configFile)) {
      throw new IllegalArgumentException(dir + ": no " + CONFIG + " (not a PEFT adapter folder)");
    }
    Object parsed;
    try {
      parsed = Json.parse(Files.readString(configFile, StandardCharsets.UTF_8));
    } catch (Json.JsonException e) {
      throw new IllegalArgumentException(configFile + ": " + e.getMessage());
    }
    if (!(parsed instanceof Map<?, ?> json)) {
      throw new IllegalArgumentException(configFile + ": expected a JSON object");
    }
    if (!"LORA".equals(json.get("peft_type"))) {
      throw new IllegalArgumentException(configFile + ": peft_type is " + json.get("peft_type") + ", expected LORA");
    }
    Object bias = json.get("bias");
    if (bias != null && !"none".equals(bias)) {
      throw new IllegalArgumentException(configFile + ": bias '" + bias + "' is not supported (only \"none\")");
    }
    if (Boolean.TRUE.equals(json.get("fan_in_fan_out"))) {
      throw new IllegalArgumentException(configFile + ": fan_in_fan_out true is not supported");
    }
    int r = integer(configFile, json, "r");
    double alpha = number(configFile, json, "lora_alpha", r);
    double dropout = number(configFile, json, "lora_dropout", 0);
    boolean rslora = Boolean.TRUE.equals(json.get("use_rslora"));
    List<String> targets = new ArrayList<>();
    if (json.get("target_modules") instanceof List<?> list) {
      list.forEach(t -> targets.add(String.valueOf(t)));
    }
    Config config = new Config(r, alpha, dropout, rslora, targets);
    Map<String, Module> modules = new LinkedHashMap<>();
    try (Safetensors.Reader weights = Safetensors.open(dir.resolve(WEIGHTS))) {
      Map<String, Safetensors.Entry> as = new LinkedHashMap<>(), bs = new LinkedHashMap<>();
      for (Safetensors.Entry e : weights.entries()) {
        String name = e.name();
        if (name.startsWith(PREFIX) && name.endsWith(".lora_A.weight")) {
          as.put(name.substring(PREFIX.length(), name.length() - ".lora_A.weight".length()), e);
        } else if (name.startsWith(PREFIX) && name.endsWith(".lora_B.weight")) {
          bs.put(name.substring(PREFIX.length(), name.length() - ".lora_B.weight".length()), e);
        } else {
          throw new IllegalArgumentException(weights.file() + ": tensor '" + name + "' is not a PEFT LoRA weight");
        }
      }
      for (String module : as.keySet()) {
        Safetensors.Entry a = as.get(module), b = bs.get(module);
        if (b == null) {
          throw new IllegalArgumentException(weights.file() + ": module '" + module + "' has lora_A but no lora_B");
        }
        if (a.shape().length != 2 || b.shape().length != 2 || a.shape()[0] != r || b.shape()[1] != r) {
          throw new IllegalArgumentException(weights.file() + ": module '" + module + "': lora_A "
              + java.util.Arrays.toString(a.shape()) + " and lora_B " + java.util.Arrays.toString(b.shape())
              + " do not fit r = " + r + " (expected [r, in] and [out, r])");
        }
        modules.put(module, new Module(module, r, (int) a.shape()[1], (int) b.shape()[0], weights.floats(a.name()),
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

  private static int integer(Path file, Map<?, ?> json, String key) {
    Object v = json.get(key);
    if (!(v instanceof BigDecimal d) || d.signum() <= 0 || d.stripTrailingZeros().scale() > 0) {
      throw new IllegalArgumentException(file + ": " + key + " must be a positive integer, got " + v);
    }
    return d.intValueExact();
  }

  private static double number(Path file, Map<?, ?> json, String key, double fallback) {
    Object v = json.get(key);
    if (v == null) {
      return fallback;
    }
    if (!(v instanceof BigDecimal d)) {
      throw new IllegalArgumentException(file + ": " + key + " must be a number, got " + v);
    }
    return d.doubleValue();
  }
}
