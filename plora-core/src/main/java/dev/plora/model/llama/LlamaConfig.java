package dev.plora.model.llama;

import dev.plora.io.AtomicFiles;
import dev.plora.io.Json;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The architecture of a Llama-family checkpoint, read from Hugging Face's {@code config.json} with
 * its defaults: Llama, Mistral, Qwen2 (biases on q, k and v) and Qwen3 (RMSNorm on each head of q
 * and k). What this library cannot compute as the reference does — another activation, a RoPE
 * scaling other than {@code llama3}, partial rotary dimensions — is refused by name, never
 * approximated.
 */
public record LlamaConfig(
    Architecture architecture,
    int hiddenSize,
    int intermediateSize,
    int layers,
    int heads,
    int kvHeads,
    int headDim,
    int vocabSize,
    double rmsNormEps,
    double ropeTheta,
    Llama3Scaling ropeScaling,
    boolean tieWordEmbeddings,
    boolean attentionBias,
    boolean mlpBias,
    int maxPositionEmbeddings,
    Integer slidingWindow) {

  /** Largest config.json read (real ones are a few KiB). */
  public static final long MAX_CONFIG_BYTES = 1 << 20;

  /** The architectures (Hugging Face's class names) and what sets them apart. */
  public enum Architecture {
    LLAMA("LlamaForCausalLM", "llama"),
    MISTRAL("MistralForCausalLM", "mistral"),
    QWEN2("Qwen2ForCausalLM", "qwen2"),
    QWEN3("Qwen3ForCausalLM", "qwen3");

    public final String className;
    /** config.json's {@code model_type}. */
    public final String modelType;

    Architecture(String className, String modelType) {
      this.className = className;
      this.modelType = modelType;
    }

    /** q_norm and k_norm: an RMSNorm over each head of q and k before RoPE. */
    public boolean normsHeads() {
      return this == QWEN3;
    }
  }

  /** Llama 3.1's RoPE scaling: low frequencies divided by {@code factor}, a smooth blend between. */
  public record Llama3Scaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {}

  public LlamaConfig {
    positive("hidden_size", hiddenSize);
    positive("intermediate_size", intermediateSize);
    positive("num_hidden_layers", layers);
    positive("num_attention_heads", heads);
    positive("num_key_value_heads", kvHeads);
    positive("head_dim", headDim);
    positive("vocab_size", vocabSize);
    if (heads % kvHeads != 0) {
      throw new IllegalArgumentException("config: num_attention_heads " + heads + " is not a multiple of "
          + "num_key_value_heads " + kvHeads);
    }
    if (headDim % 2 != 0) {
      throw new IllegalArgumentException("config: head_dim " + headDim + " is odd; rotary embeddings need pairs");
    }
    if (!(rmsNormEps > 0) || !(ropeTheta > 1) || Double.isInfinite(ropeTheta)) {
      throw new IllegalArgumentException("config: rms_norm_eps " + rmsNormEps + " must be > 0 and rope_theta "
          + ropeTheta + " finite and > 1");
    }
  }

  /** Reads {@code dir/config.json}. */
  public static LlamaConfig read(Path dir) throws IOException {
    Path file = dir.resolve("config.json");
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(file + ": not found (a Hugging Face model folder has config.json)");
    }
    String text = Json.readSmallFile(file, MAX_CONFIG_BYTES, "a model config");
    try {
      return parse(Json.parse(text));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }

  /**
   * The config.json of this config (what {@link #parse} reads back to an equal config), with
   * {@code torch_dtype} set to {@code torchDtype} ("float32", "bfloat16" or "float16").
   */
  public Map<String, Object> toJson(String torchDtype) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("architectures", List.of(architecture.className));
    m.put("model_type", architecture.modelType);
    m.put("hidden_size", hiddenSize);
    m.put("intermediate_size", intermediateSize);
    m.put("num_hidden_layers", layers);
    m.put("num_attention_heads", heads);
    m.put("num_key_value_heads", kvHeads);
    m.put("head_dim", headDim);
    m.put("vocab_size", vocabSize);
    m.put("hidden_act", "silu");
    m.put("rms_norm_eps", rmsNormEps);
    m.put("rope_theta", ropeTheta);
    if (ropeScaling != null) {
      m.put("rope_scaling", Map.of("rope_type", "llama3", "factor", ropeScaling.factor(), "low_freq_factor",
          ropeScaling.lowFreqFactor(), "high_freq_factor", ropeScaling.highFreqFactor(),
          "original_max_position_embeddings", ropeScaling.originalMaxPositions()));
    }
    m.put("tie_word_embeddings", tieWordEmbeddings);
    if (architecture != Architecture.QWEN2) { // Qwen2 has q/k/v biases by definition
      m.put("attention_bias", attentionBias);
      m.put("mlp_bias", mlpBias);
    }
    m.put("max_position_embeddings", maxPositionEmbeddings);
    if (slidingWindow != null) {
      m.put("sliding_window", slidingWindow);
      m.put("use_sliding_window", true);
    }
    m.put("torch_dtype", torchDtype);
    return m;
  }

  /** Writes {@link #toJson} to {@code dir/config.json}, atomically. */
  public void write(Path dir, String torchDtype, boolean overwrite) throws IOException {
    AtomicFiles.write(dir.resolve("config.json"), (Json.write(toJson(torchDtype), 1) + "\n")
        .getBytes(java.nio.charset.StandardCharsets.UTF_8), overwrite);
  }

  /** The config of a parsed config.json (a JSON object). */
  public static LlamaConfig parse(Object json) {
    if (!(json instanceof Map<?, ?> map)) {
      throw new IllegalArgumentException("expected a JSON object");
    }
    Fields f = new Fields(map);
    Architecture architecture = architecture(f);
    String act = f.string("hidden_act", "silu");
    if (!act.equals("silu")) {
      throw new IllegalArgumentException("hidden_act '" + act + "' is not supported (only silu, as in SwiGLU)");
    }
    for (String unsupported : List.of("partial_rotary_factor", "layer_types_with_global_attention")) {
      if (map.containsKey(unsupported)) {
        throw new IllegalArgumentException(unsupported + " is not supported");
      }
    }
    int hidden = f.integer("hidden_size", null);
    int heads = f.integer("num_attention_heads", null);
    int headDim = f.has("head_dim") ? f.integer("head_dim", null) : hidden / Math.max(heads, 1);
    if (!f.has("head_dim") && heads > 0 && hidden % heads != 0) {
      throw new IllegalArgumentException("hidden_size " + hidden + " is not a multiple of num_attention_heads "
          + heads + " and head_dim is not given");
    }
    boolean qwen2 = architecture == Architecture.QWEN2;
    Integer window = null;
    if (architecture == Architecture.MISTRAL || (f.bool("use_sliding_window", false) && f.has("sliding_window"))) {
      window = f.has("sliding_window") ? f.optionalInteger("sliding_window") : null;
    }
    return new LlamaConfig(architecture, hidden, f.integer("intermediate_size", null),
        f.integer("num_hidden_layers", null), heads, f.integer("num_key_value_heads", heads), headDim,
        f.integer("vocab_size", null), f.number("rms_norm_eps", 1e-6), f.number("rope_theta", 10000.0),
        ropeScaling(map.get("rope_scaling")), f.bool("tie_word_embeddings", false),
        qwen2 || f.bool("attention_bias", false), !qwen2 && f.bool("mlp_bias", false),
        f.integer("max_position_embeddings", 2048), window);
  }

  private static Architecture architecture(Fields f) {
    Object list = f.map.get("architectures");
    if (!(list instanceof List<?> names) || names.size() != 1 || !(names.get(0) instanceof String name)) {
      throw new IllegalArgumentException("architectures: expected one class name, got " + list);
    }
    for (Architecture a : Architecture.values()) {
      if (a.className.equals(name)) {
        return a;
      }
    }
    StringBuilder known = new StringBuilder();
    for (Architecture a : Architecture.values()) {
      known.append(known.length() == 0 ? "" : ", ").append(a.className);
    }
    throw new IllegalArgumentException("architectures: '" + name + "' is not supported (supported: " + known + ")");
  }

  private static Llama3Scaling ropeScaling(Object value) {
    if (value == null) {
      return null;
    }
    if (!(value instanceof Map<?, ?> map)) {
      throw new IllegalArgumentException("rope_scaling: expected an object or null, got " + value);
    }
    Fields f = new Fields(map);
    String type = f.has("rope_type") ? f.string("rope_type", null) : f.string("type", null);
    if (type.equals("default")) {
      return null;
    }
    if (!type.equals("llama3")) {
      throw new IllegalArgumentException("rope_scaling: type '" + type + "' is not supported (only llama3)");
    }
    Llama3Scaling s = new Llama3Scaling(f.number("factor", null), f.number("low_freq_factor", null),
        f.number("high_freq_factor", null), f.integer("original_max_position_embeddings", null));
    if (!(s.factor() >= 1) || !(s.lowFreqFactor() > 0) || !(s.highFreqFactor() > s.lowFreqFactor())
        || s.originalMaxPositions() < 1) {
      throw new IllegalArgumentException("rope_scaling: expected factor >= 1, 0 < low_freq_factor < high_freq_factor "
          + "and original_max_position_embeddings >= 1, got " + s);
    }
    return s;
  }

  private static void positive(String name, int value) {
    if (value < 1) {
      throw new IllegalArgumentException("config: " + name + " must be >= 1, got " + value);
    }
  }

  /** Query heads per key/value head (GQA's group size; 1 without grouping). */
  public int groupSize() {
    return heads / kvHeads;
  }

  /**
   * RoPE's inverse frequencies {@code θ^(−2j/head_dim)}, j < head_dim/2, in fp32 as Hugging Face
   * forms them, with the {@code llama3} scaling applied when configured.
   */
  public float[] inverseFrequencies() {
    float[] inv = new float[headDim / 2];
    for (int j = 0; j < inv.length; j++) {
      float exponent = (float) (2 * j) / headDim; // HF: arange(0, dim, 2).float() / dim, in fp32
      inv[j] = (float) (1.0 / Math.pow(ropeTheta, exponent));
    }
    if (ropeScaling == null) {
      return inv;
    }
    double old = ropeScaling.originalMaxPositions();
    double lowWavelen = old / ropeScaling.lowFreqFactor(), highWavelen = old / ropeScaling.highFreqFactor();
    for (int j = 0; j < inv.length; j++) {
      double wavelen = 2 * Math.PI / inv[j];
      if (wavelen > lowWavelen) {
        inv[j] = (float) (inv[j] / ropeScaling.factor());
      } else if (wavelen >= highWavelen) {
        double smooth = (old / wavelen - ropeScaling.lowFreqFactor())
            / (ropeScaling.highFreqFactor() - ropeScaling.lowFreqFactor());
        inv[j] = (float) ((1 - smooth) * inv[j] / ropeScaling.factor() + smooth * inv[j]);
      }
    }
    return inv;
  }

  /**
   * The tensors of the checkpoint by Hugging Face's names, with their shapes ([n] for vectors), in
   * the order the model uses them.
   */
  public Map<String, long[]> tensorShapes() {
    long h = hiddenSize, q = (long) heads * headDim, kv = (long) kvHeads * headDim, i = intermediateSize;
    Map<String, long[]> m = new LinkedHashMap<>();
    m.put("model.embed_tokens.weight", new long[] {vocabSize, h});
    for (int l = 0; l < layers; l++) {
      String p = "model.layers." + l + ".";
      m.put(p + "input_layernorm.weight", new long[] {h});
      linear(m, p + "self_attn.q_proj", q, h, attentionBias);
      linear(m, p + "self_attn.k_proj", kv, h, attentionBias);
      linear(m, p + "self_attn.v_proj", kv, h, attentionBias);
      linear(m, p + "self_attn.o_proj", h, q, attentionBias && architecture != Architecture.QWEN2);
      if (architecture.normsHeads()) {
        m.put(p + "self_attn.q_norm.weight", new long[] {headDim});
        m.put(p + "self_attn.k_norm.weight", new long[] {headDim});
      }
      m.put(p + "post_attention_layernorm.weight", new long[] {h});
      linear(m, p + "mlp.gate_proj", i, h, mlpBias);
      linear(m, p + "mlp.up_proj", i, h, mlpBias);
      linear(m, p + "mlp.down_proj", h, i, mlpBias);
    }
    m.put("model.norm.weight", new long[] {h});
    if (!tieWordEmbeddings) {
      m.put("lm_head.weight", new long[] {vocabSize, h});
    }
    return m;
  }

  /**
   * Tensors a checkpoint may hold that the model does not use: RoPE tables some exports keep
   * (recomputed here) and, with tied embeddings, a copy of the embedding as lm_head.
   */
  public boolean ignorable(String tensor) {
    return tensor.endsWith(".rotary_emb.inv_freq") || (tieWordEmbeddings && tensor.equals("lm_head.weight"));
  }

  private static void linear(Map<String, long[]> m, String module, long out, long in, boolean bias) {
    m.put(module + ".weight", new long[] {out, in});
    if (bias) {
      m.put(module + ".bias", new long[] {out});
    }
  }

  /** Typed access to a JSON object's fields, with defaults and errors that name the field. */
  private record Fields(Map<?, ?> map) {
    boolean has(String name) {
      return map.get(name) != null;
    }

    int integer(String name, Integer fallback) {
      Object v = map.get(name);
      if (v == null) {
        if (fallback == null) {
          throw new IllegalArgumentException(name + ": missing");
        }
        return fallback;
      }
      return optionalInteger(name);
    }

    Integer optionalInteger(String name) {
      Object v = map.get(name);
      try {
        return ((BigDecimal) v).intValueExact();
      } catch (ClassCastException | ArithmeticException e) {
        throw new IllegalArgumentException(name + ": expected an integer, got " + v);
      }
    }

    double number(String name, Double fallback) {
      Object v = map.get(name);
      if (v == null) {
        if (fallback == null) {
          throw new IllegalArgumentException(name + ": missing");
        }
        return fallback;
      }
      if (!(v instanceof BigDecimal d)) {
        throw new IllegalArgumentException(name + ": expected a number, got " + v);
      }
      return d.doubleValue();
    }

    boolean bool(String name, boolean fallback) {
      Object v = map.get(name);
      if (v == null) {
        return fallback;
      }
      if (!(v instanceof Boolean b)) {
        throw new IllegalArgumentException(name + ": expected true or false, got " + v);
      }
      return b;
    }

    String string(String name, String fallback) {
      Object v = map.get(name);
      if (v == null) {
        if (fallback == null) {
          throw new IllegalArgumentException(name + ": missing");
        }
        return fallback;
      }
      if (!(v instanceof String s)) {
        throw new IllegalArgumentException(name + ": expected a string, got " + v);
      }
      return s;
    }
  }

}
