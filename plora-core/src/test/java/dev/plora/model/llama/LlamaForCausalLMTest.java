package dev.plora.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.io.HfCheckpoint;
import dev.plora.io.Safetensors;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.model.InputShape;
import dev.plora.model.TokenBatch;
import dev.plora.optim.LrSchedule;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.train.Checkpoints;
import dev.plora.train.TrainListener;
import dev.plora.train.Trainer;
import dev.plora.testing.Reference;
import dev.plora.testing.TinyLlama;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Tiny random checkpoints of every architecture variant against the float64 reference model. */
class LlamaForCausalLMTest {
  private static final List<int[]> DOCS = List.of(new int[] {3, 17, 36, 0, 5}, new int[] {9, 9, 21, 2});
  private static final List<int[]> LABELS = List.of(new int[] {-100, -100, 36, 0, 5}, new int[] {9, 9, 21, 2});

  private final SplittableRandom rng = new SplittableRandom(101);

  /** Writes config.json and random weights (rounded to {@code dtype}), one file or two shards. */
  Map<String, float[]> checkpoint(Path dir, String architecture, String extra, DType dtype, boolean sharded)
      throws Exception {
    return TinyLlama.write(dir, architecture, extra, dtype, sharded, rng);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama GQA", "llama tied, llama3 rope", "qwen2 biases", "qwen3 q/k norms",
      "mistral sharded bf16"})
  void lossAndLogitsEqualTheFloat64Model(String variant, @TempDir Path dir) throws Exception {
    String arch = variant.startsWith("qwen2") ? "Qwen2ForCausalLM" : variant.startsWith("qwen3") ? "Qwen3ForCausalLM"
        : variant.startsWith("mistral") ? "MistralForCausalLM" : "LlamaForCausalLM";
    String extra = variant.contains("tied") ? ", \"tie_word_embeddings\": true, \"rope_scaling\": {\"rope_type\": "
        + "\"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
        + "\"original_max_position_embeddings\": 16}" : variant.startsWith("mistral") ? ", \"sliding_window\": 4096" : "";
    DType dtype = variant.endsWith("bf16") ? DType.BF16 : DType.F32;
    Map<String, float[]> weights = checkpoint(dir, arch, extra, dtype, variant.contains("sharded"));
    LlamaReference reference = new LlamaReference(LlamaConfig.read(dir), weights);
    // BF16: every HF rounding point is kept, so the logits sit about 1e-2 from float64 (measured 0.98e-2)
    double tolerance = dtype == DType.F32 ? 1e-5 : 1e-2, lossTolerance = dtype == DType.F32 ? 1e-5 : 1e-3;
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, dir, dtype,
        false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      long held = backend.nativeBytes();
      double want = reference.loss(DOCS, LABELS);
      double got = model.forward(batch, false).loss();
      assertEquals(want, got, lossTolerance * Math.abs(want), variant + ": loss");
      double[][] z = reference.logits(DOCS);
      double[] flat = new double[z.length * z[0].length];
      for (int t = 0; t < z.length; t++) {
        System.arraycopy(z[t], 0, flat, t * z[0].length, z[0].length);
      }
      try (Tensor logits = model.logits(batch)) {
        assertTrue(Reference.relativeError(logits.toFloatArray(), flat) <= tolerance, variant + ": logits");
      }
      model.close();
      batch.close();
      assertEquals(0, backend.nativeBytes(), variant + ": closing the model and the batch frees all " + held + " bytes");
    }
  }

  /** Full fine-tuning: every parameter's gradient against central differences of the float64 loss. */
  @Test
  void fullFineTuningGradientsAreTheFiniteDifferences(@TempDir Path dir) throws Exception {
    Map<String, float[]> weights = checkpoint(dir, "Qwen3ForCausalLM", ", \"attention_bias\": true", DType.F32, false);
    LlamaConfig config = LlamaConfig.read(dir);
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, dir,
        DType.F32, true); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      model.forward(batch, true);
      for (String name : List.of("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
          "model.layers.0.self_attn.k_proj.bias", "model.layers.1.self_attn.k_norm.weight",
          "model.layers.0.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
          "model.layers.0.input_layernorm.weight", "model.layers.1.mlp.gate_proj.weight",
          "model.layers.0.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight")) {
        String module = name.substring(0, name.lastIndexOf('.'));
        String param = name.substring(name.lastIndexOf('.') + 1);
        float[] grad = model.module(module).parameters().stream().filter(p -> p.name().equals(param)).findFirst()
            .orElseThrow().grad().toFloatArray();
        float[] w = weights.get(name);
        for (int e = 0; e < w.length; e += Math.max(1, w.length / 7)) {
          float keep = w[e];
          w[e] = keep + 1e-3f;
          double up = new LlamaReference(config, weights).loss(DOCS, LABELS);
          w[e] = keep - 1e-3f;
          double down = new LlamaReference(config, weights).loss(DOCS, LABELS);
          w[e] = keep;
          double fd = (up - down) / ((double) (keep + 1e-3f) - (double) (keep - 1e-3f));
          assertEquals(fd, grad[e], 2e-4 * Math.max(1, Math.abs(fd)), name + "[" + e + "]");
        }
      }
    }
  }

  @Test
  void loraTargetsTheProjectionsByPeftNames(@TempDir Path dir) throws Exception {
    checkpoint(dir, "LlamaForCausalLM", "", DType.F32, false);
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, dir,
        DType.F32, false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      double before = model.forward(batch, false).loss();
      var adapters = Lora.inject(model, LoraConfig.builder().r(2).alpha(4).targetModules("all-linear").build());
      List<String> paths = new ArrayList<>(adapters.keySet());
      assertEquals(14, paths.size(), "7 projections in each of 2 layers, not lm_head: " + paths);
      assertTrue(paths.contains("model.layers.1.mlp.down_proj"), paths.toString());
      assertEquals(before, model.forward(batch, true).loss(), 1e-6, "B = 0: adapters change nothing at first");
      assertEquals(28, model.parameters().size(), "A and B of each adapter, nothing else");
    }
  }

  /**
   * A freshly initialised model: weights N(0, std²), norms 1, the same for the same seed; written
   * with its config.json, it loads back and computes the same logits bit for bit.
   */
  @Test
  void anInitialisedModelIsWrittenAndLoadsBack(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("config.json"), TinyLlama.CONFIG.formatted("Qwen3ForCausalLM", ""));
    LlamaConfig config = LlamaConfig.read(dir);
    Path out = dir.resolve("fresh");
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM a = LlamaForCausalLM.initialize(backend, config, DType.F32, false, 7, 0.02f);
        LlamaForCausalLM b = LlamaForCausalLM.initialize(backend, config, DType.F32, false, 7, 0.02f);
        LlamaForCausalLM c = LlamaForCausalLM.initialize(backend, config, DType.F32, false, 8, 0.02f);
        TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      float[] q = ((dev.plora.model.Linear) a.module("model.layers.1.self_attn.q_proj")).weight().toFloatArray();
      double sum = 0, squares = 0;
      for (float v : q) {
        sum += v;
        squares += (double) v * v;
      }
      double mean = sum / q.length, std = Math.sqrt(squares / q.length - mean * mean);
      assertEquals(0.02, std, 0.02 * 0.25, "std of " + q.length + " draws");
      assertEquals(0, mean, 0.02 * 0.25, "mean");
      for (float v : ((dev.plora.model.RmsNormLayer) a.module("model.layers.0.self_attn.k_norm")).weight()
          .toFloatArray()) {
        assertEquals(1f, v, "norm weights start at 1");
      }
      double loss = a.forward(batch, false).loss();
      assertEquals(loss, b.forward(batch, false).loss(), 0, "the same seed, the same model");
      assertTrue(loss != c.forward(batch, false).loss(), "another seed, another model");
      a.saveMerged(out, Safetensors.Dtype.F32, false);
      config.write(out, "float32", false);
      try (LlamaForCausalLM loaded = LlamaForCausalLM.load(backend, out, DType.F32, false);
          Tensor la = a.logits(batch); Tensor lb = loaded.logits(batch)) {
        assertArrayEquals(la.toFloatArray(), lb.toFloatArray(), "logits of the written model");
      }
    }
  }

  /** LoRA and PLoRA on the model through the Trainer: the loss falls, and a rerun repeats it bit for bit. */
  @Test
  void trainsWithTheTrainerReproducibly(@TempDir Path dir) throws Exception {
    checkpoint(dir, "LlamaForCausalLM", "", DType.F32, false);
    double[][] runs = new double[2][];
    for (int run = 0; run < 2; run++) {
      try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, dir,
          DType.F32, false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
        var adapters = Lora.inject(model, LoraConfig.builder().r(4).alpha(8).dropout(0.1f).seed(3)
            .targetModules("q_proj", "v_proj", "down_proj").build());
        double[] losses = new double[20];
        try (Trainer<TokenBatch> trainer = Trainer.<TokenBatch>builder(backend)
            .lossFunction(b -> model.forward(b, true).loss()).batches((step, micro) -> batch).adapters(adapters)
            .steps(20).schedule(LrSchedule.constant(2e-2)).periodic(PeriodicLoraConfig.momentum(1, 0.1f))
            .listener(new TrainListener() {
              @Override
              public void onStep(StepEvent e) {
                losses[(int) e.step()] = e.loss();
              }
            }).build()) {
          trainer.run();
        }
        runs[run] = losses;
      }
    }
    assertTrue(runs[0][19] < 0.8 * runs[0][0], "loss " + runs[0][0] + " -> " + runs[0][19]);
    assertArrayEquals(runs[0], runs[1], "a second run repeats the first bit for bit");
  }

  /**
   * A merged model folder out, sharded as the input was, with its config and tokenizer files: loaded
   * back, the model computes what the adapted one did.
   */
  @Test
  void mergedWeightsComputeWhatTheAdaptedModelComputes(@TempDir Path dir) throws Exception {
    Path in = Files.createDirectory(dir.resolve("in")), out = dir.resolve("out");
    checkpoint(in, "Qwen2ForCausalLM", "", DType.F32, true);
    List<String> companions = List.of("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json");
    for (String name : companions.subList(1, companions.size())) {
      Files.writeString(in.resolve(name), "{\"file\": \"" + name + "\"}");
    }
    double adapted;
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, in,
        DType.F32, false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      var adapters = Lora.inject(model, LoraConfig.builder().r(2).alpha(4).targetModules("all-linear").build());
      try (Trainer<TokenBatch> trainer = Trainer.<TokenBatch>builder(backend)
          .lossFunction(b -> model.forward(b, true).loss()).batches((step, micro) -> batch).adapters(adapters)
          .steps(5).schedule(LrSchedule.constant(5e-2)).build()) {
        trainer.run(); // B is no longer zero
      }
      adapted = model.forward(batch, false).loss();
      Map<String, List<String>> shards;
      try (HfCheckpoint input = HfCheckpoint.open(in)) {
        shards = input.shards();
      }
      model.saveMerged(out, in, Safetensors.Dtype.F32, false);
      try (HfCheckpoint written = HfCheckpoint.open(out)) {
        assertEquals(shards, written.shards(), "sharded as the input was");
      }
      for (String name : companions.subList(1, companions.size())) {
        assertEquals(Files.readString(in.resolve(name)), Files.readString(out.resolve(name)), name);
      }
      assertEquals(LlamaConfig.read(in), LlamaConfig.read(out));
      assertTrue(Files.readString(out.resolve("config.json")).contains("\"torch_dtype\": \"float32\""),
          "config.json names the weights' dtype");
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> model.saveMerged(out, in, Safetensors.Dtype.F32, false));
      assertTrue(e.getMessage().contains("exists"), e.getMessage());
      try (LlamaForCausalLM merged = LlamaForCausalLM.load(backend, out, DType.F32, false)) {
        assertEquals(adapted, merged.forward(batch, false).loss(), 1e-5 * adapted);
      }
    }
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM base = LlamaForCausalLM.load(backend, in,
        DType.F32, false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      assertTrue(Math.abs(base.forward(batch, false).loss() - adapted) > 1e-3, "training changed the model");
    }
  }

  /** Checkpointed layers keep less and give the same loss and LoRA gradients, dropout masks included. */
  @Test
  void checkpointedLayersGiveTheSameGradientsForLessMemory(@TempDir Path dir) throws Exception {
    checkpoint(dir, "Qwen3ForCausalLM", "", DType.F32, false);
    List<float[]> grads = new ArrayList<>();
    long[] kept = new long[2];
    double[] losses = new double[2];
    for (int run = 0; run < 2; run++) {
      try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, dir,
          DType.F32, false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
        var adapters = Lora.inject(model, LoraConfig.builder().r(2).alpha(4).dropout(0.2f).seed(5)
            .targetModules("all-linear").build());
        for (var a : adapters.values()) { // B = 0 would hide the gradients of A
          a.masterB().fill(0.25f);
          a.sync();
        }
        model.checkpointLayers(run == 1);
        losses[run] = model.forward(batch, true).loss();
        kept[run] = model.plan(InputShape.ofRows(batch.tokens())).keptBytes();
        for (var a : adapters.values()) {
          if (run == 0) {
            grads.add(a.gradA().toFloatArray());
            grads.add(a.gradB().toFloatArray());
          } else {
            assertArrayEquals(grads.remove(0), a.gradA().toFloatArray(), "A's gradient");
            assertArrayEquals(grads.remove(0), a.gradB().toFloatArray(), "B's gradient");
          }
        }
      }
    }
    assertEquals(losses[0], losses[1], 0, "the same loss");
    assertTrue(kept[1] < kept[0] / 2, "kept bytes " + kept[0] + " -> " + kept[1]);
  }

  /**
   * The memory target of checkpointed training: what stays between forward and backward is at most
   * two hidden-size rows per token per layer in the compute dtype (the residual stream kept at each
   * layer's input, everything else recomputed), LoRA on every projection included.
   */
  @Test
  void checkpointedLayersKeepAtMostTwoHiddenRowsPerTokenPerLayer(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("config.json"), TinyLlama.CONFIG.formatted("LlamaForCausalLM", "")
        .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 8")); // the bench model's depth
    LlamaConfig config = LlamaConfig.read(dir);
    int tokens = 1024;
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM model = LlamaForCausalLM.initialize(backend, config, DType.BF16, false, 3, 0.02f)) {
      Lora.inject(model, LoraConfig.builder().r(4).alpha(8).dropout(0.1f).targetModules("all-linear").build());
      model.checkpointLayers(true);
      long kept = model.plan(InputShape.ofRows(tokens)).keptBytes();
      double perTokenPerLayer = kept / (double) tokens / config.layers() / (config.hiddenSize() * 2.0);
      assertTrue(perTokenPerLayer <= 2, "kept " + kept + " bytes: " + perTokenPerLayer
          + " hidden rows per token per layer");
    }
  }

  /**
   * PLoRA on the model, stopped at step 6 with a checkpoint and resumed in a fresh model: steps 6..11
   * repeat the uninterrupted run's losses bit for bit (dropout, unloads and Adam moments included).
   */
  @Test
  void aResumedRunReplaysTheUninterruptedOne(@TempDir Path dir) throws Exception {
    Path in = Files.createDirectory(dir.resolve("model")), checkpoints = dir.resolve("checkpoints");
    checkpoint(in, "Qwen3ForCausalLM", "", DType.BF16, false);
    double[] straight = trainPlora(in, 12, null, null);
    trainPlora(in, 6, checkpoints, null);
    double[] resumed = trainPlora(in, 12, null, Checkpoints.latest(checkpoints).orElseThrow());
    assertArrayEquals(java.util.Arrays.copyOfRange(straight, 6, 12), java.util.Arrays.copyOfRange(resumed, 6, 12),
        "the losses of steps 6..11");
  }

  /** Losses by step of a PLoRA run over {@code steps} steps, checkpointing or resuming as given. */
  private double[] trainPlora(Path model, int steps, Path checkpoints, Path resumeFrom) throws Exception {
    double[] losses = new double[steps];
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM m = LlamaForCausalLM.load(backend, model,
        DType.BF16, false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      var adapters = Lora.inject(m, LoraConfig.builder().r(2).alpha(4).dropout(0.1f).seed(9)
          .targetModules("q_proj", "gate_proj").build());
      Trainer.Builder<TokenBatch> builder = Trainer.<TokenBatch>builder(backend)
          .lossFunction(b -> m.forward(b, true).loss()).batches((step, micro) -> batch).adapters(adapters)
          .steps(steps).schedule(LrSchedule.constant(1e-2)).periodic(PeriodicLoraConfig.full(4))
          .listener(new TrainListener() {
            @Override
            public void onStep(StepEvent e) {
              losses[(int) e.step()] = e.loss();
            }
          });
      if (checkpoints != null) {
        builder.checkpoints(checkpoints, 6, 1);
      }
      try (Trainer<TokenBatch> trainer = builder.build()) {
        if (resumeFrom != null) {
          trainer.loadCheckpoint(resumeFrom);
        }
        trainer.run();
      }
    }
    return losses;
  }

  /** Causality and packing: later tokens and other documents leave a token's logits bit-identical. */
  @Test
  void tokensSeeOnlyTheirDocumentUpToThemselves(@TempDir Path dir) throws Exception {
    checkpoint(dir, "LlamaForCausalLM", "", DType.F32, false);
    List<int[]> changed = List.of(new int[] {3, 17, 36, 30, 31}, new int[] {1, 2, 3, 4}); // from token 3 of doc 0 on
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, dir,
        DType.F32, false); TokenBatch a = TokenBatch.pack(backend, DOCS, null);
        TokenBatch b = TokenBatch.pack(backend, changed, null); Tensor la = model.logits(a); Tensor lb = model.logits(b)) {
      int vocab = 37;
      float[] x = la.toFloatArray(), y = lb.toFloatArray();
      for (int t = 0; t < 3; t++) {
        for (int v = 0; v < vocab; v++) {
          assertEquals(Float.floatToIntBits(x[t * vocab + v]), Float.floatToIntBits(y[t * vocab + v]),
              "token " + t + " of document 0 sees neither later tokens nor document 1");
        }
      }
      assertTrue(x[3 * vocab] != y[3 * vocab], "token 3 itself changed");
    }
  }

  /** LoRA: the gradients of A and B equal central differences of the float64 loss of W + s·B·A. */
  @Test
  void loraGradientsAreTheFiniteDifferences(@TempDir Path dir) throws Exception {
    Map<String, float[]> weights = checkpoint(dir, "LlamaForCausalLM", "", DType.F32, false);
    LlamaConfig config = LlamaConfig.read(dir);
    String module = "model.layers.1.self_attn.v_proj";
    float scaling = 4f / 2;
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = LlamaForCausalLM.load(backend, dir,
        DType.F32, false); TokenBatch batch = TokenBatch.pack(backend, DOCS, LABELS)) {
      var adapter = Lora.inject(model, LoraConfig.builder().r(2).alpha(4).targetModules(module).build()).get(module);
      adapter.masterB().copyFrom(Reference.random(rng, adapter.masterB().rows() * 2, DType.F32));
      adapter.sync();
      model.forward(batch, true);
      float[] a = adapter.masterA().toFloatArray(), b = adapter.masterB().toFloatArray();
      float[] ga = adapter.gradA().toFloatArray(), gb = adapter.gradB().toFloatArray();
      float[] w = weights.get(module + ".weight");
      int out = adapter.masterB().rows(), in = adapter.masterA().cols();
      for (boolean ofA : new boolean[] {true, false}) {
        float[] p = ofA ? a : b, g = ofA ? ga : gb;
        for (int e = 0; e < p.length; e += 5) {
          double[] sides = new double[2];
          for (int side = 0; side < 2; side++) {
            float[] pa = a.clone(), pb = b.clone();
            (ofA ? pa : pb)[e] += side == 0 ? 1e-3f : -1e-3f;
            float[] merged = w.clone();
            for (int i = 0; i < out; i++) {
              for (int k = 0; k < in; k++) {
                merged[i * in + k] += scaling * (pb[i * 2] * pa[k] + pb[i * 2 + 1] * pa[in + k]);
              }
            }
            Map<String, float[]> m = new LinkedHashMap<>(weights);
            m.put(module + ".weight", merged);
            sides[side] = new LlamaReference(config, m).loss(DOCS, LABELS);
          }
          double fd = (sides[0] - sides[1]) / ((double) (p[e] + 1e-3f) - (double) (p[e] - 1e-3f));
          assertEquals(fd, g[e], 2e-4 * Math.max(1, Math.abs(fd)), (ofA ? "A" : "B") + "[" + e + "]");
        }
      }
    }
  }

  @Test
  void aFolderThatDoesNotFitIsRefusedBeforeLoading(@TempDir Path dir) throws Exception {
    checkpoint(dir, "LlamaForCausalLM", "", DType.F32, false);
    Files.writeString(dir.resolve("config.json"), TinyLlama.CONFIG.formatted("LlamaForCausalLM", "").replace(
        "\"intermediate_size\": 24", "\"intermediate_size\": 25"));
    try (Backend backend = Backends.create("cpu")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> LlamaForCausalLM.load(backend, dir, DType.F32, false));
      assertTrue(e.getMessage().contains("model.layers.0.mlp.gate_proj.weight' has shape [24, 16], expected [25, 16]"),
          e.getMessage());
      assertEquals(0, backend.nativeBytes(), "nothing stays allocated");
    }
  }
}
