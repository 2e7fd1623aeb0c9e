package dev.plora.finetune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.data.Batch;
import dev.plora.data.Example;
import dev.plora.io.Json;
import dev.plora.io.PeftAdapter;
import dev.plora.lora.Lora;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.io.Safetensors;
import dev.plora.tensor.DType;
import dev.plora.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Fine-tuning a tiny random model end to end: the loss falls and every output reloads to what was trained. */
class FineTuneTest {
  private static final int VOCAB = 40;
  @TempDir static Path shared;
  static Path model;

  /** A tiny Llama (GQA, untied head) written as a model folder with a tokenizer file beside it. */
  @BeforeAll
  static void writeModel() throws Exception {
    model = Files.createDirectory(shared.resolve("tiny"));
    LlamaConfig config = LlamaConfig.parse(Json.parse("""
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": %d,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0}""".formatted(VOCAB)));
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM m = LlamaForCausalLM.initialize(backend, config, DType.F32, false, 1, 0.1f)) {
      m.saveMerged(model, Safetensors.Dtype.F32, false);
    }
    config.write(model, "float32", false);
    Files.writeString(model.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
  }

  /** Arithmetic progressions mod 32 after a prompt token: the completion follows from its first two tokens. */
  static Example example(SplittableRandom rng) {
    int n = 6 + rng.nextInt(6), start = rng.nextInt(32), step = 1 + rng.nextInt(3);
    int[] ids = new int[n], labels = new int[n];
    ids[0] = 33 + step; // a prompt token naming the step
    labels[0] = -100;
    for (int i = 1; i < n; i++) {
      ids[i] = (start + i * step) % 32;
      labels[i] = i == 1 ? -100 : ids[i];
    }
    return new Example(ids, labels);
  }

  /** A pure function of (step, micro): three examples drawn from a stream of its own. */
  static Trainer.BatchSource<Batch> batches(long seed) {
    return (step, micro) -> {
      SplittableRandom rng = new SplittableRandom(seed * 1_000_003L + step * 31 + micro);
      List<Example> docs = List.of(example(rng), example(rng), example(rng));
      return new Batch(new int[] {0, 1, 2}, docs.stream().map(Example::inputIds).toList(),
          docs.stream().map(Example::labels).toList());
    };
  }

  static List<Example> evalSet() {
    SplittableRandom rng = new SplittableRandom(999);
    List<Example> list = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      list.add(example(rng));
    }
    return list;
  }

  static FineTuneSettings.Builder settings(Path out, Method method) {
    return FineTuneSettings.builder(model, out).method(method).r(4).alpha(8).steps(80).lr(3e-2).schedule("constant")
        .backend("cpu").evalEvery(40).saveEvery(10, 2);
  }

  @Test
  void loraWritesAPeftAdapterThatReloadsToTheSameEvalLoss(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("run");
    FineTuneResult r = FineTune.builder(settings(out, Method.LORA).targetModules(List.of("q_proj", "v_proj",
        "down_proj")).build()).train(batches(1)).eval(evalSet()).build().run();
    double first = r.evals().get(0).result().loss();
    Evaluation.Result last = r.finalEval();
    assertEquals(2, r.evals().size(), "after steps 40 and 80");
    assertTrue(last.loss() < baseLoss() - 0.4 && last.loss() < first, "eval loss " + baseLoss() + " -> " + first + " -> " + last.loss());
    assertEquals(80, r.losses().size());
    PeftAdapter peft = PeftAdapter.read(out);
    assertEquals(List.of("down_proj", "q_proj", "v_proj"), peft.config().targetModules());
    Map<?, ?> json = (Map<?, ?>) Json.parse(Files.readString(out.resolve(PeftAdapter.CONFIG)));
    assertEquals("CAUSAL_LM", json.get("task_type"));
    assertEquals(model.toString(), json.get("base_model_name_or_path"));
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM m = LlamaForCausalLM.load(backend, model, DType.F32, false)) {
      assertEquals(6, PeftAdapter.apply(m, out).size(), "3 modules in each of 2 layers");
      assertEquals(last.loss(), Evaluation.evaluate(m, evalSet()).loss(), 1e-6 * last.loss(),
          "the written adapter gives the in-memory model's eval loss");
    }
    Map<?, ?> run = (Map<?, ?>) Json.parse(Files.readString(out.resolve(FineTune.RUN_JSON)));
    assertEquals("completed", run.get("status"));
    assertEquals(last.loss(), ((Number) ((Map<?, ?>) run.get("results")).get("eval_loss")).doubleValue(), 0);
    assertEquals("lora", ((Map<?, ?>) run.get("settings")).get("method"));
  }

  @Test
  void ploraWritesAMergedModelThatEvaluatesAlikeAndARankExport(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("run");
    FineTuneResult r = FineTune.builder(settings(out, Method.PLORA).unloadEvery(7).exportRank(2).build())
        .train(batches(2)).eval(evalSet()).build().run();
    assertEquals(11, r.unloads(), "every 7 steps");
    double trained = r.finalEval().loss();
    assertTrue(trained < baseLoss() - 0.4, baseLoss() + " -> " + trained);
    assertTrue(Files.exists(out.resolve("tokenizer_config.json")), "companion files copied");
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM merged = LlamaForCausalLM.load(backend, out, DType.F32, false)) {
      assertEquals(trained, Evaluation.evaluate(merged, evalSet()).loss(), 1e-5 * trained,
          "the merged folder alone gives the trained model's eval loss");
    }
    PeftAdapter export = PeftAdapter.read(out.resolve("adapter-rank-2"));
    assertEquals(14, export.modules().size(), "every projection of both layers");
    assertEquals(14, r.exportErrors().size());
    for (double e : r.exportErrors().values()) {
      assertTrue(e > 0 && e < 1, "relative error " + e);
    }
  }

  @Test
  void fullFineTuningTrainsEveryWeight(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("run");
    FineTuneResult r = FineTune.builder(settings(out, Method.FULL).lr(3e-3).build()).train(batches(3))
        .eval(evalSet()).build().run();
    assertTrue(r.finalEval().loss() < 0.5 * baseLoss(), baseLoss() + " -> " + r.finalEval().loss());
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM merged = LlamaForCausalLM.load(backend, out, DType.F32, false)) {
      assertEquals(r.finalEval().loss(), Evaluation.evaluate(merged, evalSet()).loss(), 1e-6);
    }
  }

  /** A run killed after its step-20 checkpoint, resumed, repeats the uninterrupted run's later losses exactly. */
  @Test
  void aResumedRunContinuesTheSameTrajectory(@TempDir Path dir) throws Exception {
    FineTuneResult straight = FineTune.builder(settings(dir.resolve("a"), Method.PLORA).steps(30).unloadEvery(6).dropout(0.1f)
        .build()).train(batches(4)).build().run();
    Path out = dir.resolve("b");
    RuntimeException kill = assertThrows(RuntimeException.class, () -> FineTune.builder(settings(out, Method.PLORA).steps(30)
        .unloadEvery(6).dropout(0.1f).build()).train(batches(4)).listener(new FineTune.Listener() {
          @Override
          public void onStep(StepEvent e) {
            if (e.step() + 1 == 23) {
              throw new IllegalStateException("killed");
            }
          }
        }).build().run());
    assertEquals("killed", kill.getMessage());
    Map<?, ?> failed = (Map<?, ?>) Json.parse(Files.readString(out.resolve(FineTune.RUN_JSON)));
    assertEquals("failed", failed.get("status"));
    assertTrue(String.valueOf(failed.get("last_checkpoint")).contains("20"), failed.toString());
    FineTuneResult resumed = FineTune.builder(settings(out, Method.PLORA).steps(30).unloadEvery(6).dropout(0.1f).resume(true)
        .build()).train(batches(4)).build().run();
    assertEquals(20, resumed.resumedFrom());
    double[] expected = straight.losses().subList(20, 30).stream().mapToDouble(FineTuneResult.StepLoss::loss)
        .toArray();
    double[] actual = resumed.losses().stream().mapToDouble(FineTuneResult.StepLoss::loss).toArray();
    assertArrayEquals(expected, actual, "steps 21..30 bit for bit");
  }

  /**
   * Exact match after full fine-tuning: each answer compared with argmax decoding by full forward
   * passes, computed here independently of the generator; examples without one answer are left out.
   */
  @Test
  void exactMatchCountsTheAnswersGreedyDecodingGets(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("run");
    FineTune.builder(settings(out, Method.FULL).lr(3e-3).steps(120).build()).train(batches(3)).build().run();
    List<Example> set = new ArrayList<>(evalSet());
    set.add(new Example(new int[] {1, 2, 3}, new int[] {1, 2, 3})); // every token scored: no single answer
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM m = LlamaForCausalLM.load(backend, out, DType.F32, false)) {
      ExactMatch.Result r = ExactMatch.evaluate(m, set, java.util.Set.of());
      int expected = 0;
      for (Example e : set.subList(0, set.size() - 1)) {
        int start = 2; // the prompt token and the progression's first term
        List<Integer> seq = new ArrayList<>();
        for (int i = 0; i < start; i++) {
          seq.add(e.inputIds()[i]);
        }
        boolean same = true;
        for (int t = start; t < e.inputIds().length; t++) {
          int[] ids = seq.stream().mapToInt(Integer::intValue).toArray();
          try (var batch = dev.plora.model.TokenBatch.pack(backend, List.of(ids), null);
              var logits = m.logits(batch)) {
            float[] last = java.util.Arrays.copyOfRange(logits.toFloatArray(), (ids.length - 1) * VOCAB,
                ids.length * VOCAB);
            int best = 0;
            for (int v = 1; v < VOCAB; v++) {
              best = last[v] > last[best] ? v : best;
            }
            seq.add(best);
            same &= best == e.inputIds()[t];
          }
        }
        expected += same ? 1 : 0;
      }
      assertEquals(12, r.answered(), "the last example has no single answer");
      assertEquals(null, r.matches().get(12));
      assertEquals(expected, r.matched(), "matches " + r.matches());
      assertTrue(r.matched() >= 3, "a trained model gets some progressions right: " + r.matches());
    }
  }

  @Test
  void anAnswerStartsAtTheFirstScoredTokenOfAScoredSuffix() {
    assertEquals(2, ExactMatch.answerStart(new Example(new int[] {5, 6, 7, 8}, new int[] {-100, -100, 7, 8})));
    assertEquals(-1, ExactMatch.answerStart(new Example(new int[] {5, 6, 7, 8}, new int[] {5, 6, 7, 8})));
    assertEquals(-1, ExactMatch.answerStart(new Example(new int[] {5, 6, 7, 8}, new int[] {-100, 6, -100, 8})));
    assertEquals(-1, ExactMatch.answerStart(new Example(new int[] {5, 6}, new int[] {-100, -100})));
  }

  /** An adapter applied to a model it was not trained for is refused, naming the module, before any change. */
  @Test
  void anAdapterThatDoesNotFitTheModelIsRefused(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("run");
    FineTune.builder(settings(out, Method.LORA).steps(2).targetModules(List.of("down_proj")).build())
        .train(batches(1)).build().run();
    Path other = Files.createDirectory(dir.resolve("other"));
    LlamaConfig config = LlamaConfig.read(model);
    LlamaConfig wider = new LlamaConfig(config.architecture(), config.hiddenSize(), 64, config.layers(),
        config.heads(), config.kvHeads(), config.headDim(), config.vocabSize(), config.rmsNormEps(),
        config.ropeTheta(), null, false, false, false, config.maxPositionEmbeddings(), null);
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM m = LlamaForCausalLM.initialize(backend, wider, DType.F32, false, 1, 0.1f)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.apply(m, out));
      assertTrue(e.getMessage().contains("model.layers.0.mlp.down_proj") && e.getMessage().contains("[32, 48]"),
          e.getMessage());
      assertTrue(Lora.adapters(m).isEmpty(), "the model is unchanged");
      var shallow = new LlamaConfig(config.architecture(), config.hiddenSize(), config.intermediateSize(), 1,
          config.heads(), config.kvHeads(), config.headDim(), config.vocabSize(), config.rmsNormEps(),
          config.ropeTheta(), null, false, false, false, config.maxPositionEmbeddings(), null);
      try (LlamaForCausalLM one = LlamaForCausalLM.initialize(backend, shallow, DType.F32, false, 1, 0.1f)) {
        e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.apply(one, out));
        assertTrue(e.getMessage().contains("modules the model lacks [model.layers.1.mlp.down_proj]"), e.getMessage());
      }
    }
  }

  @Test
  void badSettingsAndOutputsAreRefusedBeforeAnyWork(@TempDir Path dir) throws Exception {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> settings(dir.resolve("x"), Method.LORA).r(0).steps(0).schedule("wavy").build());
    assertTrue(e.getMessage().contains("steps: expected >= 1, got 0"), e.getMessage());
    assertTrue(e.getMessage().contains("schedule"), e.getMessage());
    assertTrue(e.getMessage().contains("r"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> settings(dir.resolve("x"), Method.LORA).exportRank(4)
        .build());
    assertTrue(e.getMessage().startsWith("export_rank"), e.getMessage());
    Path busy = Files.createDirectories(dir.resolve("busy"));
    Files.writeString(busy.resolve("keep.txt"), "mine");
    e = assertThrows(IllegalArgumentException.class, () -> FineTune.builder(settings(busy, Method.LORA).build())
        .train(batches(5)).build().run());
    assertTrue(e.getMessage().contains("not empty"), e.getMessage());
    assertEquals(List.of(busy.resolve("keep.txt")), Files.list(busy).toList(), "nothing written");
    e = assertThrows(IllegalArgumentException.class, () -> FineTune.builder(settings(dir.resolve("none"),
        Method.LORA).resume(true).build()).train(batches(5)).build().run());
    assertTrue(e.getMessage().startsWith("resume:"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("none")));
  }

  private static double baseLoss;

  static double baseLoss() throws Exception {
    if (baseLoss == 0) {
      try (Backend backend = Backends.create("cpu");
          LlamaForCausalLM m = LlamaForCausalLM.load(backend, model, DType.F32, false)) {
        baseLoss = Evaluation.evaluate(m, evalSet()).loss();
      }
    }
    return baseLoss;
  }
}
