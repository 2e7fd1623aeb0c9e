package dev.plora.model.llama;

import dev.plora.backend.Backend;
import dev.plora.backend.RandomFill;
import dev.plora.io.HfCheckpoint;
import dev.plora.io.HfModelFolder;
import dev.plora.io.Safetensors;
import dev.plora.lora.LoraAdapter;
import dev.plora.lora.LoraLinear;
import dev.plora.model.ActivationSpec;
import dev.plora.model.DecoderLayer;
import dev.plora.model.GatedMlp;
import dev.plora.model.InputShape;
import dev.plora.model.KvCache;
import dev.plora.model.Linear;
import dev.plora.model.LmHeadLoss;
import dev.plora.model.Module;
import dev.plora.model.ModuleList;
import dev.plora.model.RmsNormLayer;
import dev.plora.model.SelfAttention;
import dev.plora.model.TokenBatch;
import dev.plora.model.TokenEmbedding;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Llama-family causal language model (Llama, Mistral, Qwen2, Qwen3) with Hugging Face's module
 * paths — {@code model.embed_tokens}, {@code model.layers.N.self_attn.q_proj}, …, {@code model.norm},
 * {@code lm_head} — so that LoRA targets its projections by PEFT's names. Its weights are frozen
 * (for adapters) or all trainable (full fine-tuning), in one compute dtype.
 *
 * <p>{@link #forward} computes the mean cross-entropy of a {@link TokenBatch} (the head fused with
 * the loss, chunked) and, when asked, the gradients of everything trainable. Buffers: {@code h0}
 * … {@code hN} (the residual stream between layers, kept), {@code hn} (the final norm's output) and
 * in backward {@code dhn} and {@code dh} (the stream's gradient, layer by layer).
 */
public final class LlamaForCausalLM extends Module {
  /** Loads the weights a chunk of rows at a time; implemented by {@link HfCheckpoint#load}. */
  @FunctionalInterface
  public interface WeightSource {
    void load(String name, Tensor destination) throws IOException;
  }

  private final LlamaConfig config;
  private final Backend backend;
  private final DType dtype;
  private final LmHeadLoss head;

  /** Hugging Face's LlamaModel: the embedding, the layers and the final norm. */
  private static final class Backbone extends Module {
    Backbone(TokenEmbedding embed, List<DecoderLayer> layers, RmsNormLayer norm) {
      register("embed_tokens", embed);
      register("layers", new ModuleList<>(DecoderLayer.class, layers));
      register("norm", norm);
    }
  }

  private LlamaForCausalLM(LlamaConfig config, Backend backend, DType dtype, Backbone model, Linear lmHead) {
    this.config = config;
    this.backend = backend;
    this.dtype = dtype;
    register("model", model);
    if (lmHead != null) {
      register("lm_head", lmHead);
    }
    this.head = new LmHeadLoss(backend, config.vocabSize(), dtype);
  }

  /**
   * Loads a Hugging Face model folder (config.json and model.safetensors or sharded weights) onto
   * {@code backend} in {@code dtype}; a folder that does not fit is refused before any weight is
   * read, naming the file, the tensor and both shapes.
   */
  public static LlamaForCausalLM load(Backend backend, Path dir, DType dtype, boolean trainable) throws IOException {
    LlamaConfig config = LlamaConfig.read(dir);
    try (HfCheckpoint weights = HfCheckpoint.open(dir)) {
      weights.requireExactly(config.tensorShapes(), config::ignorable);
      return build(backend, config, weights::load, dtype, trainable);
    }
  }

  /**
   * A freshly initialised model as Hugging Face initialises one: every weight matrix and the
   * embedding drawn from N(0, {@code std}²) ({@code initializer_range}, 0.02 for most models),
   * biases 0, norms 1. Draws come from Philox ({@code seed}, stream = the tensor's place in
   * {@link LlamaConfig#tensorShapes()}), so the same seed gives the same model on every backend.
   */
  public static LlamaForCausalLM initialize(Backend backend, LlamaConfig config, DType dtype, boolean trainable,
      long seed, float std) throws IOException {
    if (!(std >= 0) || Float.isInfinite(std)) {
      throw new IllegalArgumentException("std: expected a finite standard deviation >= 0, got " + std);
    }
    List<String> names = List.copyOf(config.tensorShapes().keySet());
    return build(backend, config, (name, out) -> {
      if (name.endsWith("norm.weight")) {
        out.fill(1f);
      } else if (name.endsWith(".bias")) {
        out.fill(0f);
      } else {
        RandomFill.normal(backend, out, 0f, std, seed, names.indexOf(name));
      }
    }, dtype, trainable);
  }

  /** A model of {@code config} whose tensors (by Hugging Face's names) come from {@code weights}. */
  public static LlamaForCausalLM build(Backend backend, LlamaConfig config, WeightSource weights, DType dtype,
      boolean trainable) throws IOException {
    if (backend == null || config == null || weights == null || dtype == null || !dtype.isFloat()) {
      throw new IllegalArgumentException("backend, config, weights and a float dtype: expected, got dtype " + dtype);
    }
    Loader l = new Loader(backend, config, config.tensorShapes(), weights, dtype, trainable);
    List<Module> made = new ArrayList<>();
    float[] invFreq = config.inverseFrequencies();
    try (Tensor inv = backend.fromArray(invFreq, 1, invFreq.length, DType.F32)) { // each layer copies it
      TokenEmbedding embed;
      try (Tensor table = l.tensor("model.embed_tokens.weight")) {
        embed = l.made(made, new TokenEmbedding(table, trainable));
      }
      List<DecoderLayer> layers = new ArrayList<>();
      for (int i = 0; i < config.layers(); i++) {
        layers.add(l.made(made, l.layer("model.layers." + i + ".", inv)));
      }
      RmsNormLayer norm = l.made(made, l.norm("model.norm.weight", 1));
      Linear lmHead = config.tieWordEmbeddings() ? null : l.made(made, l.linear("lm_head", false));
      made.clear(); // the model owns them from here
      return new LlamaForCausalLM(config, backend, dtype, new Backbone(embed, layers, norm), lmHead);
    } catch (IOException | RuntimeException e) {
      for (Module m : made) {
        m.close();
      }
      throw e;
    }
  }

  /** Builds the modules of one checkpoint, each tensor uploaded, copied into its module and freed. */
  private record Loader(Backend backend, LlamaConfig config, Map<String, long[]> shapes, WeightSource weights,
      DType dtype, boolean trainable) {
    <M extends Module> M made(List<Module> made, M module) {
      made.add(module);
      return module;
    }

    Tensor tensor(String name) throws IOException {
      long[] shape = shapes.get(name);
      int rows = shape.length == 1 ? 1 : Math.toIntExact(shape[0]), cols = Math.toIntExact(shape[shape.length - 1]);
      Tensor t = backend.allocate(rows, cols, dtype);
      try {
        weights.load(name, t);
        return t;
      } catch (IOException | RuntimeException e) {
        t.close();
        throw e;
      }
    }

    Linear linear(String module, boolean bias) throws IOException {
      try (Tensor w = tensor(module + ".weight"); Tensor b = bias ? tensor(module + ".bias") : null) {
        return new Linear(w, b, trainable);
      }
    }

    RmsNormLayer norm(String name, int rowsPerToken) throws IOException {
      try (Tensor w = tensor(name)) {
        return new RmsNormLayer(w, (float) config.rmsNormEps(), trainable, rowsPerToken);
      }
    }

    /** Decoder layer {@code p}; the parts made so far are closed if it cannot be made. */
    DecoderLayer layer(String p, Tensor inv) throws IOException {
      List<Module> parts = new ArrayList<>();
      try {
        boolean qkvBias = config.attentionBias();
        boolean oBias = qkvBias && config.architecture() != LlamaConfig.Architecture.QWEN2;
        Linear q = made(parts, linear(p + "self_attn.q_proj", qkvBias));
        Linear k = made(parts, linear(p + "self_attn.k_proj", qkvBias));
        Linear v = made(parts, linear(p + "self_attn.v_proj", qkvBias));
        Linear o = made(parts, linear(p + "self_attn.o_proj", oBias));
        RmsNormLayer qNorm = null, kNorm = null;
        if (config.architecture().normsHeads()) {
          qNorm = made(parts, norm(p + "self_attn.q_norm.weight", config.heads()));
          kNorm = made(parts, norm(p + "self_attn.k_norm.weight", config.kvHeads()));
        }
        SelfAttention attention = made(parts, new SelfAttention(q, k, v, o, qNorm, kNorm, config.heads(),
            config.kvHeads(), config.headDim(), inv));
        parts.clear();
        parts.add(attention);
        RmsNormLayer inputNorm = made(parts, norm(p + "input_layernorm.weight", 1));
        RmsNormLayer postNorm = made(parts, norm(p + "post_attention_layernorm.weight", 1));
        Linear gate = made(parts, linear(p + "mlp.gate_proj", config.mlpBias()));
        Linear up = made(parts, linear(p + "mlp.up_proj", config.mlpBias()));
        Linear down = made(parts, linear(p + "mlp.down_proj", config.mlpBias()));
        GatedMlp mlp = new GatedMlp(gate, up, down);
        parts.removeAll(List.of(gate, up, down));
        parts.add(mlp);
        DecoderLayer layer = new DecoderLayer(inputNorm, attention, postNorm, mlp);
        parts.clear();
        return layer;
      } catch (IOException | RuntimeException e) {
        for (Module m : parts) {
          m.close();
        }
        throw e;
      }
    }
  }

  public LlamaConfig config() {
    return config;
  }

  @Override
  public Backend backend() {
    return backend;
  }

  public DType dtype() {
    return dtype;
  }

  /** lm_head produces the outputs (all-linear leaves it out); a tied head is the embedding. */
  @Override
  public String outputHead() {
    return config.tieWordEmbeddings() ? null : "lm_head";
  }

  /**
   * Activation checkpointing for every decoder layer: with {@code on}, a layer keeps only its input
   * (the residual stream) from forward to backward and computes the rest again in backward, with
   * the same dropout masks, for the same gradients bit for bit.
   */
  public LlamaForCausalLM checkpointLayers(boolean on) {
    for (DecoderLayer layer : layers()) {
      layer.recompute(on);
    }
    return this;
  }

  private TokenEmbedding embed() {
    return (TokenEmbedding) module("model.embed_tokens");
  }

  @SuppressWarnings("unchecked")
  private List<DecoderLayer> layers() {
    return ((ModuleList<DecoderLayer>) module("model.layers")).list();
  }

  private RmsNormLayer norm() {
    return (RmsNormLayer) module("model.norm");
  }

  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    int m = shape.rows(), hidden = config.hiddenSize();
    List<ActivationSpec> out = new ArrayList<>();
    for (int i = 0; i <= config.layers(); i++) {
      out.add(ActivationSpec.kept("h" + i, m, hidden, dtype));
    }
    out.add(ActivationSpec.recomputable("hn", m, hidden, dtype));
    out.add(ActivationSpec.scratch("dhn", m, hidden, dtype));
    out.add(ActivationSpec.scratch("dh", m, hidden, dtype));
    return out;
  }

  /**
   * The mean cross-entropy of the batch's scored tokens, and with {@code backward} the gradients
   * of every trainable parameter (accumulated) — LoRA adapters' or, in full fine-tuning, all
   * weights'.
   */
  public LmHeadLoss.Result forward(TokenBatch batch, boolean backward) {
    requireOpen();
    if (batch == null) {
      throw new IllegalArgumentException("batch: must not be null");
    }
    Tensor hn = backbone(batch);
    Tensor dhn = backward ? activation("dhn") : null;
    LmHeadLoss.Result result = head.forward(hn, headWeight(), batch.targets(), batch.scoredTokens(), dhn, backward ? headGradient() : null);
    if (backward) {
      Tensor dh = activation("dh");
      norm().backward(dhn, dh);
      List<DecoderLayer> layers = layers();
      for (int i = layers.size() - 1; i >= 0; i--) {
        layers.get(i).backward(dh, dh); // the gradient of a layer's input replaces that of its output
      }
      embed().backward(dh);
    }
    return result;
  }

  /** The head weight's fp32 gradient when it trains (the embedding's, when tied), else null. */
  private Tensor headGradient() {
    List<Parameter> p = config.tieWordEmbeddings() ? embed().parameters() : child("lm_head").parameters();
    return p.isEmpty() ? null : p.get(0).grad();
  }

  /** The logits [tokens, vocab] in F32 (for evaluation of small batches: this holds them whole). */
  public Tensor logits(TokenBatch batch) {
    requireOpen();
    if (batch == null) {
      throw new IllegalArgumentException("batch: must not be null");
    }
    Tensor hn = backbone(batch);
    Tensor logits = backend.allocate(batch.tokens(), config.vocabSize(), DType.F32);
    backend.gemm(false, hn, true, headWeight(), 1f, 0f, logits);
    return logits;
  }

  /** An empty key/value cache of {@code maxTokens} positions for this model's layers ({@link #decode}). */
  public KvCache newCache(int maxTokens) {
    requireOpen();
    return new KvCache(backend, config.layers(), maxTokens, config.kvHeads() * config.headDim(), dtype);
  }

  /**
   * The next-token logits (F32, {@code vocab} values) after new tokens of the sequence whose past
   * {@code cache} holds: the tokens {@code ids} take positions {@code cache.length()} on, their keys
   * and values are appended to the cache, and only the last token's logits are computed. A prompt
   * goes in one call (prefill), then one token per call. Adapters take part as in
   * {@link #forward}; put the model in evaluation mode ({@code train(false)}) for no dropout. A
   * step that fails leaves the cache as it was.
   */
  public float[] decode(int[] ids, KvCache cache) {
    requireOpen();
    if (ids == null || ids.length == 0) {
      throw new IllegalArgumentException("ids: expected at least one token");
    }
    if (cache == null || cache.isClosed()) {
      throw new IllegalArgumentException("cache: expected an open KV cache, got "
          + (cache == null ? "null" : "a closed one"));
    }
    int columns = config.kvHeads() * config.headDim();
    if (cache.backend() != backend || cache.dtype() != dtype || cache.layers() != config.layers()
        || cache.columns() != columns) {
      throw new IllegalArgumentException("cache: expected " + config.layers() + " layers of [maxTokens," + columns
          + "] " + dtype + " on " + backend.name() + ", got " + cache.layers() + " layers of [" + cache.capacity() + ","
          + cache.columns() + "] " + cache.dtype() + " on " + cache.backend().name() + " (use newCache)");
    }
    int n = ids.length;
    if (config.slidingWindow() != null && (long) cache.length() + n > config.slidingWindow()) {
      throw new IllegalArgumentException("ids: " + ((long) cache.length() + n) + " positions are more than the model's"
          + " sliding_window of " + config.slidingWindow() + ", which this library does not compute");
    }
    int past = cache.append(n);
    int[] positions = new int[n];
    for (int i = 0; i < n; i++) {
      positions[i] = past + i;
    }
    try (Tensor idTensor = backend.fromInts(ids, n, 1); Tensor posTensor = backend.fromInts(positions, n, 1);
        Tensor logits = backend.allocate(1, config.vocabSize(), DType.F32)) {
      usePlan(InputShape.ofRows(n));
      List<DecoderLayer> layers = layers();
      embed().forward(idTensor, activation("h0"));
      for (int i = 0; i < layers.size(); i++) {
        layers.get(i).decode(activation("h" + i), posTensor, cache.keys(i), cache.values(i), past,
            activation("h" + (i + 1)));
      }
      Tensor hn = activation("hn");
      norm().forward(activation("h" + layers.size()), hn);
      backend.gemm(false, hn.rowsView(n - 1, 1), true, headWeight(), 1f, 0f, logits);
      return backend.read(logits);
    } catch (RuntimeException e) {
      cache.truncate(past);
      throw e;
    }
  }

  /** The final norm's output for the batch: the embedding, every layer and the norm, forward. */
  private Tensor backbone(TokenBatch batch) {
    if (config.slidingWindow() != null && batch.longestDocument() > config.slidingWindow()) {
      throw new IllegalArgumentException("batch: a document of " + batch.longestDocument() + " tokens is longer than "
          + "the model's sliding_window of " + config.slidingWindow() + ", which this library does not compute");
    }
    usePlan(InputShape.ofRows(batch.tokens()));
    List<DecoderLayer> layers = layers();
    embed().forward(batch.ids(), activation("h0"));
    for (int i = 0; i < layers.size(); i++) {
      layers.get(i).forward(activation("h" + i), batch.positions(), batch.seqStart(), activation("h" + (i + 1)));
    }
    Tensor hn = activation("hn");
    norm().forward(activation("h" + layers.size()), hn);
    return hn;
  }

  /** lm_head's weight, or the embedding table when tied; adapters on the head are refused. */
  private Tensor headWeight() {
    if (config.tieWordEmbeddings()) {
      return embed().table();
    }
    if (!(child("lm_head") instanceof Linear head)) {
      throw new IllegalStateException("lm_head: adapters on the output head are not supported");
    }
    return head.weight();
  }

  /**
   * Writes the model's weights in Hugging Face's layout under {@code dir}, with each LoRA adapter
   * folded in ({@code W + s·B·A}, from the fp32 masters, computed aside one layer at a time: the
   * model is unchanged), laid out as {@code shards} says (an input folder's
   * {@link HfCheckpoint#shards()}, or {@code model.safetensors} with every tensor), in {@code dtype}.
   */
  public void saveMerged(Path dir, Map<String, List<String>> shards, Safetensors.Dtype dtype, boolean overwrite)
      throws IOException {
    requireOpen();
    HfCheckpoint.write(dir, shards, config.tensorShapes(), new HfCheckpoint.TensorSource() {
      @Override
      public Tensor lend(String name) {
        int dot = name.lastIndexOf('.');
        Module owner = module(name.substring(0, dot));
        boolean isBias = name.endsWith(".bias");
        if (owner instanceof LoraLinear lora) {
          if (isBias || lora.isMerged()) {
            return isBias ? lora.bias() : lora.weight();
          }
          LoraAdapter a = lora.adapter();
          Tensor merged = backend.allocate(lora.outFeatures(), lora.inFeatures(), DType.F32);
          try {
            backend.copy(lora.weight(), merged);
            backend.gemm(false, a.masterB(), false, a.masterA(), a.scaling(), 1f, merged);
            return merged;
          } catch (RuntimeException e) {
            merged.close();
            throw e;
          }
        }
        if (owner instanceof Linear linear) {
          return isBias ? linear.bias() : linear.weight();
        }
        if (owner instanceof RmsNormLayer norm) {
          return norm.weight();
        }
        if (owner instanceof TokenEmbedding embed) {
          return embed.table();
        }
        throw new IllegalStateException("tensor '" + name + "': module " + owner.getClass().getSimpleName()
            + " has no weights to write");
      }

      @Override
      public void giveBack(String name, Tensor tensor) {
        if (module(name.substring(0, name.lastIndexOf('.'))) instanceof LoraLinear lora && !lora.isMerged()
            && !name.endsWith(".bias")) {
          tensor.close(); // the merged copy made for it
        }
      }
    }, dtype, overwrite);
  }

  /**
   * Writes a complete model folder at {@code dir}, as {@code base} (the folder the model was loaded
   * from) is laid out: the merged weights, in {@code dtype}, in base's shard files and index, and
   * base's config, tokenizer, generation and chat-template files
   * ({@link HfModelFolder#copyCompanionFiles}, config.json's torch_dtype naming {@code dtype}). The
   * folder is filled beside {@code dir} and renamed into place: it appears whole or not at all.
   * {@code base} must describe this model (the same config.json fields and tensor shapes).
   */
  public void saveMerged(Path dir, Path base, Safetensors.Dtype dtype, boolean overwrite) throws IOException {
    requireOpen();
    if (!LlamaConfig.read(base).equals(config)) {
      throw new IllegalArgumentException(base + ": its config.json describes another model than this one");
    }
    Map<String, List<String>> shards = new LinkedHashMap<>();
    try (HfCheckpoint weights = HfCheckpoint.open(base)) {
      weights.requireExactly(config.tensorShapes(), config::ignorable);
      weights.shards().forEach((file, names) -> {
        List<String> kept = names.stream().filter(config.tensorShapes()::containsKey).toList();
        if (!kept.isEmpty()) {
          shards.put(file, kept); // tensors the model ignores (such as rotary tables) are not written
        }
      });
    }
    HfModelFolder.write(dir, overwrite, tmp -> {
      saveMerged(tmp, shards, dtype, false);
      HfModelFolder.copyCompanionFiles(base, tmp, dtype);
    });
  }

  /** Every tensor in one {@code model.safetensors}. */
  public void saveMerged(Path dir, Safetensors.Dtype dtype, boolean overwrite) throws IOException {
    saveMerged(dir, Map.of(HfCheckpoint.SINGLE, List.copyOf(config.tensorShapes().keySet())), dtype, overwrite);
  }

  @Override
  protected void release() {
    head.close();
  }
}
