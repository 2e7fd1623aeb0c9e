package dev.plora.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.io.HfCheckpoint;
import dev.plora.io.Json;
import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.testing.Reference;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code plora merge} of a Hugging Face model folder: a tiny random Llama in three shards and a
 * PEFT adapter named as PEFT names a causal LM's modules, with rank_pattern and alpha_pattern.
 */
class MergeFolderTest {
  private static final String CONFIG = """
      {"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
       "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 6, "vocab_size": 37,
       "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "torch_dtype": "float32"}
      """;
  /** Files a model folder carries beside its weights, each with made-up contents. */
  private static final List<String> COMPANIONS = List.of("config.json", "generation_config.json", "tokenizer.json",
      "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "chat_template.jinja");
  private static final List<String> TARGETS = List.of("q_proj", "v_proj", "down_proj");
  /** Layer 1's q_proj gets rank 3 and every down_proj alpha 6; the rest r = 2, lora_alpha = 4. */
  private static final Map<String, Integer> RANK_PATTERN = Map.of("model.layers.1.self_attn.q_proj", 3);
  private static final Map<String, Double> ALPHA_PATTERN = Map.of("down_proj", 6.0);
  private static final List<int[]> DOCS = List.of(new int[] {3, 17, 36, 0, 5}, new int[] {9, 9, 21, 2});

  @TempDir Path dir;
  private Path base;
  private Path adapter;
  private Map<String, float[]> weights;
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  @BeforeEach
  void tinyModelAndAdapter() throws Exception {
    SplittableRandom rng = new SplittableRandom(17);
    base = Files.createDirectory(dir.resolve("base"));
    Files.writeString(base.resolve("config.json"), CONFIG);
    Map<String, long[]> shapes = LlamaConfig.read(base).tensorShapes();
    weights = new LinkedHashMap<>();
    Map<String, Map<String, float[]>> shards = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> t : shapes.entrySet()) {
      String name = t.getKey();
      float[] v = Reference.random(rng, Math.toIntExact(elements(t.getValue())), DType.F32);
      for (int i = 0; i < v.length; i++) {
        v[i] = name.endsWith("norm.weight") ? 1 + 0.2f * v[i] : 0.4f * v[i];
      }
      weights.put(name, v);
      String shard = name.startsWith("model.layers.1.") ? "model-00002-of-00003.safetensors"
          : name.startsWith("model.norm") || name.startsWith("lm_head") ? "model-00003-of-00003.safetensors"
          : "model-00001-of-00003.safetensors";
      shards.computeIfAbsent(shard, s -> new LinkedHashMap<>()).put(name, v);
    }
    Map<String, String> weightMap = new LinkedHashMap<>();
    for (Map.Entry<String, Map<String, float[]>> s : shards.entrySet()) {
      Safetensors.writeFloats(base.resolve(s.getKey()), s.getValue(), shapes, Safetensors.Dtype.F32,
          Map.of("format", "pt"), false);
      s.getValue().keySet().forEach(name -> weightMap.put(name, s.getKey()));
    }
    HfCheckpoint.writeIndex(base, weightMap, 4 * weights.values().stream().mapToLong(v -> v.length).sum(), false);
    for (String name : COMPANIONS.subList(1, COMPANIONS.size())) {
      Files.writeString(base.resolve(name), "{\"made up\": \"" + name + "\"}\n");
    }
    Files.write(base.resolve("pytorch_model.bin"), new byte[] {1, 2, 3}); // stale weights: never copied

    List<PeftAdapter.Module> modules = new ArrayList<>();
    for (int layer = 0; layer < 2; layer++) {
      for (String target : TARGETS) {
        String module = "model.layers." + layer + "." + (target.equals("down_proj") ? "mlp." : "self_attn.") + target;
        long[] shape = shapes.get(module + ".weight");
        int o = (int) shape[0], in = (int) shape[1], r = RANK_PATTERN.getOrDefault(module, 2);
        modules.add(new PeftAdapter.Module(module, r, in, o, Reference.random(rng, r * in, DType.F32),
            Reference.random(rng, o * r, DType.F32)));
      }
    }
    adapter = dir.resolve("adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(2, 4, 0, false, TARGETS, RANK_PATTERN, ALPHA_PATTERN), modules,
        false);
    // the config PEFT itself writes for a causal LM, with the fields it adds
    Files.writeString(adapter.resolve(PeftAdapter.CONFIG), """
        {"alpha_pattern": {"down_proj": 6}, "auto_mapping": null, "base_model_name_or_path": "tiny-llama",
         "bias": "none", "corda_config": null, "eva_config": null, "exclude_modules": null, "fan_in_fan_out": false,
         "inference_mode": true, "init_lora_weights": true, "layer_replication": null, "layers_pattern": null,
         "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 4, "lora_bias": false, "lora_dropout": 0.05,
         "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": null, "peft_type": "LORA",
         "qalora_group_size": 16, "r": 2, "rank_pattern": {"model.layers.1.self_attn.q_proj": 3}, "revision": null,
         "target_modules": ["v_proj", "down_proj", "q_proj"], "target_parameters": null, "task_type": "CAUSAL_LM",
         "trainable_token_indices": null, "use_dora": false, "use_qalora": false, "use_rslora": false}
        """);
    try (Safetensors.Reader a = Safetensors.open(adapter.resolve(PeftAdapter.WEIGHTS))) {
      assertTrue(a.entries().stream().anyMatch(e -> e.name().equals(
          "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")), "PEFT's names of a causal LM's modules");
    }
  }

  private int run(String... args) {
    out.getBuffer().setLength(0);
    err.getBuffer().setLength(0);
    return Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
  }

  private int merge(Path baseArg, Path target, String... extra) {
    List<String> args = new ArrayList<>(List.of("merge", "--base", baseArg.toString(), "--adapter",
        adapter.toString(), "--out", target.toString(), "--backend", "cpu"));
    args.addAll(List.of(extra));
    return run(args.toArray(String[]::new));
  }

  private static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** Every module's W + s·B·A in float64 equals the merged tensor; every other tensor is bit-identical. */
  @Test
  void aShardedFolderMergesIntoTheSameLayoutWithItsCompanionFiles() throws Exception {
    Path merged = dir.resolve("merged");
    assertEquals(0, merge(base, merged), err.toString());
    assertTrue(out.toString().contains("merged 6 modules (scaling 1.33333 to 3.00000)"), out.toString());
    PeftAdapter peft = PeftAdapter.read(adapter);
    try (HfCheckpoint in = HfCheckpoint.open(base); HfCheckpoint result = HfCheckpoint.open(merged)) {
      assertTrue(result.indexed());
      assertEquals(in.shards(), result.shards(), "the same shard files, holding the same tensors in order");
      for (String name : weights.keySet()) {
        String module = name.substring(0, name.length() - ".weight".length());
        PeftAdapter.Module m = peft.modules().get(module);
        if (m == null) {
          assertEquals(reader(in, name).data(name), reader(result, name).data(name), name + ": bit for bit");
          continue;
        }
        double s = module.equals("model.layers.1.self_attn.q_proj") ? 4.0 / 3 : module.endsWith("down_proj") ? 3 : 2;
        assertEquals(s, peft.config().scaling(module), 0, module);
        double[] want = Reference.gemm(false, m.b(), m.r(), false, m.a(), m.in(), s, 0, null, m.out(), m.in(), m.r());
        float[] w = weights.get(name);
        for (int i = 0; i < want.length; i++) {
          want[i] += w[i];
        }
        float[] got = reader(result, name).floats(name);
        for (int i = 0; i < want.length; i++) {
          assertEquals(want[i], got[i], 2e-6 * (1 + Math.abs(want[i])), name + " [" + i + "]");
        }
      }
    }
    Map<?, ?> index = (Map<?, ?>) Json.parse(Files.readString(merged.resolve(HfCheckpoint.INDEX)));
    Map<?, ?> inputIndex = (Map<?, ?>) Json.parse(Files.readString(base.resolve(HfCheckpoint.INDEX)));
    assertEquals(inputIndex.get("weight_map"), index.get("weight_map"));
    assertEquals(new BigDecimal(4 * weights.values().stream().mapToLong(v -> v.length).sum()),
        ((Map<?, ?>) index.get("metadata")).get("total_size"));
    for (String name : COMPANIONS) {
      assertArrayEquals(Files.readAllBytes(base.resolve(name)), Files.readAllBytes(merged.resolve(name)), name);
    }
    assertFalse(Files.exists(merged.resolve("pytorch_model.bin")), "the base's other weights are not copied");
    assertEquals(listing(base).size() - 1, listing(merged).size(), "the same files but pytorch_model.bin: "
        + listing(merged));
    assertEquals(List.of("adapter", "base", "merged"), listing(dir), "no temporary folder left");
  }

  /** The merged folder loads, and computes the logits the base model computes with the adapter beside it. */
  @Test
  void theMergedFolderComputesWhatBasePlusAdapterComputes() throws Exception {
    Path merged = dir.resolve("merged");
    assertEquals(0, merge(base.resolve(HfCheckpoint.INDEX), merged), err.toString()); // BASE given as its index
    float[] adapted, fromMerged, plain;
    try (Backend backend = Backends.create("cpu"); TokenBatch batch = TokenBatch.pack(backend, DOCS, DOCS)) {
      try (LlamaForCausalLM model = LlamaForCausalLM.load(backend, base, DType.F32, false)) {
        Map<String, Float> alphas = new LinkedHashMap<>();
        ALPHA_PATTERN.forEach((k, v) -> alphas.put(k, v.floatValue()));
        var adapters = Lora.inject(model, LoraConfig.builder().r(2).alpha(4).targetModules(TARGETS)
            .rankPattern(RANK_PATTERN).alphaPattern(alphas).build());
        PeftAdapter.load(adapter, adapters);
        try (Tensor logits = model.logits(batch)) {
          adapted = logits.toFloatArray();
        }
      }
      try (LlamaForCausalLM model = LlamaForCausalLM.load(backend, base, DType.F32, false);
          Tensor logits = model.logits(batch)) {
        plain = logits.toFloatArray();
      }
      try (LlamaForCausalLM model = LlamaForCausalLM.load(backend, merged, DType.F32, false);
          Tensor logits = model.logits(batch)) {
        fromMerged = logits.toFloatArray();
      }
    }
    double diff = 0, change = 0;
    for (int i = 0; i < adapted.length; i++) {
      diff = Math.max(diff, Math.abs(adapted[i] - fromMerged[i]));
      change = Math.max(change, Math.abs(adapted[i] - plain[i]));
    }
    assertTrue(diff < 2e-5, "merged vs base + adapter: max |Δlogit| " + diff);
    assertTrue(change > 0.1, "the adapter changes the logits: max |Δ| " + change);
  }

  /** --dtype bf16: every float tensor in BF16, total_size halved, config.json's torch_dtype bfloat16. */
  @Test
  void aDtypeChangeIsRecordedInTheIndexAndTheConfig() throws Exception {
    Path merged = dir.resolve("merged");
    assertEquals(0, merge(base, merged, "--dtype", "bf16"), err.toString());
    try (HfCheckpoint result = HfCheckpoint.open(merged)) {
      for (String name : weights.keySet()) {
        assertEquals(Safetensors.Dtype.BF16, result.entry(name).dtype(), name);
      }
    }
    Map<?, ?> index = (Map<?, ?>) Json.parse(Files.readString(merged.resolve(HfCheckpoint.INDEX)));
    assertEquals(new BigDecimal(2 * weights.values().stream().mapToLong(v -> v.length).sum()),
        ((Map<?, ?>) index.get("metadata")).get("total_size"));
    Map<?, ?> config = (Map<?, ?>) Json.parse(Files.readString(merged.resolve("config.json")));
    assertEquals("bfloat16", config.get("torch_dtype"));
    Map<?, ?> original = new TreeMap<>((Map<?, ?>) Json.parse(CONFIG));
    Map<Object, Object> rest = new TreeMap<>(config);
    rest.put("torch_dtype", "float32");
    assertEquals(original, rest, "nothing else in config.json changes");
    assertEquals(LlamaConfig.read(base), LlamaConfig.read(merged));
  }

  /** --force replaces an earlier merge whole; without it an existing OUT is refused and left alone. */
  @Test
  void anExistingOutputIsReplacedOnlyWithForce() throws Exception {
    Path merged = dir.resolve("merged");
    assertEquals(0, merge(base, merged, "--dtype", "bf16"), err.toString());
    Files.writeString(merged.resolve("extra.txt"), "from before");
    Map<String, byte[]> before = contents(merged);
    assertEquals(2, merge(base, merged), err.toString());
    assertOneLine();
    assertTrue(err.toString().contains("exists: use --force"), err.toString());
    assertEquals(before.keySet(), contents(merged).keySet());
    assertEquals(0, merge(base, merged, "--force"), err.toString());
    assertFalse(Files.exists(merged.resolve("extra.txt")), "the folder is replaced, not added to");
    try (HfCheckpoint result = HfCheckpoint.open(merged)) {
      assertEquals(Safetensors.Dtype.F32, result.entry("model.norm.weight").dtype());
    }
    assertEquals(List.of("adapter", "base", "merged"), listing(dir), "nothing left beside it");

    Map<String, byte[]> baseBefore = contents(base);
    assertEquals(2, merge(base, base, "--force"), err.toString());
    assertTrue(err.toString().contains("is or holds the input"), err.toString());
    assertEquals(2, merge(base, dir, "--force"), err.toString());
    assertTrue(err.toString().contains("is or holds the input"), err.toString());
    Path notes = Files.createDirectory(dir.resolve("notes"));
    Files.writeString(notes.resolve("todo.txt"), "keep me");
    assertEquals(2, merge(base, notes, "--force"), err.toString());
    assertOneLine();
    assertTrue(err.toString().contains("not a model folder"), err.toString());
    assertEquals(List.of("todo.txt"), listing(notes));
    Map<String, byte[]> baseAfter = contents(base);
    assertEquals(baseBefore.keySet(), baseAfter.keySet());
    baseBefore.forEach((name, bytes) -> assertArrayEquals(bytes, baseAfter.get(name), name));
  }

  @Test
  void anAdapterModuleMissingFromTheBaseIsRefusedBeforeAnyWrite() throws Exception {
    rewriteAdapter("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.qkv_proj", null);
    assertRefused(dir.resolve("merged"), "adapter module 'model.layers.0.self_attn.qkv_proj' has no weight "
        + "'model.layers.0.self_attn.qkv_proj.weight'");
  }

  @Test
  void aShapeMismatchNamesModuleTensorAndBothShapes() throws Exception {
    rewriteAdapter("model.layers.1.mlp.down_proj", "model.layers.1.mlp.down_proj", 20);
    assertRefused(dir.resolve("merged"), "module 'model.layers.1.mlp.down_proj': base weight "
        + "'model.layers.1.mlp.down_proj.weight' in " + base.resolve("model-00002-of-00003.safetensors")
        + " has shape [16, 24], the adapter's update B·A is [out, in] = [16, 20]");
  }

  @Test
  void anOutputThatCannotBeWrittenIsRefused() throws Exception {
    Path target;
    if (MainTest.isRoot()) {
      assumeTrue(Files.isDirectory(Path.of("/proc")), "no /proc here");
      target = Path.of("/proc/plora-merged");
    } else {
      Path readOnly = Files.createDirectory(dir.resolve("read-only"));
      assertTrue(readOnly.toFile().setWritable(false, false));
      target = readOnly.resolve("merged");
    }
    assertEquals(2, merge(base, target), err.toString());
    assertOneLine();
    assertTrue(err.toString().contains("cannot write " + target), err.toString());
    assertFalse(Files.exists(target));
  }

  /** A failure while writing (here a value bf16 cannot hold) leaves neither OUT nor a temporary folder. */
  @Test
  void aFailureMidWriteLeavesNothing() throws Exception {
    Path shard = base.resolve("model-00003-of-00003.safetensors");
    Map<String, float[]> values = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    try (Safetensors.Reader r = Safetensors.open(shard)) {
      for (Safetensors.Entry e : r.entries()) {
        values.put(e.name(), r.floats(e.name()));
        shapes.put(e.name(), e.shape());
      }
    }
    values.get("lm_head.weight")[5] = Float.MAX_VALUE; // finite in f32, infinite in bf16
    Safetensors.writeFloats(shard, values, shapes, Safetensors.Dtype.F32, Map.of("format", "pt"), true);
    assertEquals(2, merge(base, dir.resolve("merged"), "--dtype", "bf16"), err.toString());
    assertOneLine();
    assertTrue(err.toString().contains("'lm_head.weight'"), err.toString());
    assertEquals(List.of("adapter", "base"), listing(dir), "no OUT and no temporary folder");
  }

  /** Replaces module {@code from} of the adapter by {@code to}, with {@code in} columns when given. */
  private void rewriteAdapter(String from, String to, Integer in) throws Exception {
    PeftAdapter peft = PeftAdapter.read(adapter);
    List<PeftAdapter.Module> modules = new ArrayList<>();
    for (PeftAdapter.Module m : peft.modules().values()) {
      if (m.name().equals(from)) {
        int cols = in == null ? m.in() : in;
        m = new PeftAdapter.Module(to, m.r(), cols, m.out(), new float[m.r() * cols], m.b());
      }
      modules.add(m);
    }
    PeftAdapter.write(adapter, peft.config(), modules, true);
  }

  private void assertRefused(Path target, String message) throws Exception {
    assertEquals(2, merge(base, target), err.toString());
    assertOneLine();
    assertTrue(err.toString().contains(message), err.toString());
    assertEquals(List.of("adapter", "base"), listing(dir), "nothing written");
  }

  private void assertOneLine() {
    List<String> lines = err.toString().strip().lines().toList();
    assertEquals(1, lines.size(), "one line on stderr, got " + err);
    assertTrue(lines.get(0).startsWith("plora: "), lines.get(0));
  }

  /** The names in a folder, hidden ones included, sorted. */
  private static List<String> listing(Path folder) throws Exception {
    try (var files = Files.list(folder)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static Map<String, byte[]> contents(Path folder) throws Exception {
    Map<String, byte[]> out = new TreeMap<>();
    for (String name : listing(folder)) {
      out.put(name, Files.readAllBytes(folder.resolve(name)));
    }
    return out;
  }

  /** The open file of a checkpoint that holds tensor {@code name}. */
  private static Safetensors.Reader reader(HfCheckpoint c, String name) {
    return c.shard(c.file(name).getFileName().toString());
  }
}
