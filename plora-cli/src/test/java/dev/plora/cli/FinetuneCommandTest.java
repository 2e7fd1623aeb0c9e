package dev.plora.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.io.Json;
import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import dev.plora.testing.TestTokenizers;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code plora finetune}, {@code eval} and {@code generate} on a tiny random Llama with a real
 * tokenizer.json: outputs that reload to what was trained, and bad inputs refused in one line.
 */
class FinetuneCommandTest {
  @TempDir static Path shared;
  static Path model, train, evalFile;

  @BeforeAll
  static void setUp() throws Exception {
    model = Files.createDirectory(shared.resolve("model"));
    LlamaConfig config = LlamaConfig.parse(Json.parse("""
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 256}"""));
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM m = LlamaForCausalLM.initialize(backend, config, DType.F32, false, 1, 0.1f)) {
      m.saveMerged(model, Safetensors.Dtype.F32, false);
    }
    config.write(model, "float32", false);
    TestTokenizers.writeTo(model);
    train = lines(shared.resolve("train.jsonl"), 48, 1);
    evalFile = lines(shared.resolve("eval.jsonl"), 8, 2);
  }

  /** Prompt/completion lines: a word and the word again (a copy task). */
  static Path lines(Path file, int n, long seed) throws Exception {
    SplittableRandom rng = new SplittableRandom(seed);
    List<String> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      StringBuilder w = new StringBuilder();
      for (int j = 0; j < 3 + rng.nextInt(3); j++) {
        w.append((char) ('a' + rng.nextInt(6)));
      }
      out.add(Json.write(Map.of("prompt", w + " =", "completion", " " + w)));
    }
    Files.write(file, out);
    return file;
  }

  record Run(int code, String out, String err) {}

  static Run run(String... args) {
    StringWriter out = new StringWriter(), err = new StringWriter();
    int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void loraFineTunesEvaluatesAndGenerates(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("adapter");
    Run r = run("finetune", "--model", model.toString(), "--data", train.toString(), "--eval", evalFile.toString(),
        "--out", out.toString(), "--steps", "40", "--batch", "2", "--seq-len", "32", "--lr", "2e-2",
        "--schedule", "constant", "--r", "4", "--eval-every", "20", "--save-every", "20");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("train: 48 examples (prompt_completion)"), r.err());
    assertTrue(r.err().contains("eval after step 20"), r.err());
    for (String name : List.of(PeftAdapter.CONFIG, PeftAdapter.WEIGHTS, "run.json", "loss.png")) {
      assertTrue(Files.isRegularFile(out.resolve(name)), name + " in " + out);
    }
    Map<?, ?> runJson = (Map<?, ?>) Json.parse(Files.readString(out.resolve("run.json")));
    Map<?, ?> results = (Map<?, ?>) runJson.get("results");
    List<?> rows = (List<?>) ((Map<?, ?>) runJson.get("train_loss")).get("rows");
    double first = ((Number) ((List<?>) rows.get(0)).get(1)).doubleValue();
    double last = ((Number) results.get("final_train_loss")).doubleValue();
    assertTrue(last < first - 0.5, "train loss " + first + " -> " + last);
    double evalLoss = ((Number) results.get("eval_loss")).doubleValue();
    assertEquals(40L, ((Number) results.get("steps")).longValue());
    assertEquals("prompt_completion", ((Map<?, ?>) ((Map<?, ?>) runJson.get("settings")).get("data")).get("format"));

    Path json = dir.resolve("eval.json");
    Run e = run("eval", "--model", model.toString(), "--adapter", out.toString(), "--data", evalFile.toString(),
        "--seq-len", "32", "--json", json.toString(), "--generate");
    assertEquals(0, e.code(), e.err());
    Map<?, ?> doc = (Map<?, ?>) Json.parse(Files.readString(json));
    assertEquals(evalLoss, ((Number) doc.get("loss")).doubleValue(), 1e-6 * evalLoss,
        "the written adapter, applied by eval, gives the run's final eval loss");
    assertEquals(8, ((List<?>) doc.get("examples")).size());
    assertEquals(Math.exp(((Number) doc.get("loss")).doubleValue()), ((Number) doc.get("perplexity")).doubleValue(),
        1e-9);
    assertTrue(doc.containsKey("exact_match"), doc.toString());
    assertTrue(((List<?>) doc.get("examples")).stream().allMatch(x -> ((Map<?, ?>) x).containsKey("exact_match")),
        "each prompt/completion example has one answer: " + doc.get("examples"));
    assertTrue(e.out().contains("exact match"), e.out());

    Run base = run("eval", "--model", model.toString(), "--data", evalFile.toString(), "--seq-len", "32");
    assertEquals(0, base.code(), base.err());
    double baseLoss = Double.parseDouble(base.out().split(" ")[1]);
    assertTrue(evalLoss < baseLoss, "fine-tuning lowered the eval loss: " + baseLoss + " -> " + evalLoss);

    Run g = run("generate", "--model", model.toString(), "--adapter", out.toString(), "--prompt", "abc =",
        "--max-new-tokens", "5");
    assertEquals(0, g.code(), g.err());
    assertTrue(g.err().contains("prompt tokens") && g.err().contains("new tokens"), g.err());
    Run again = run("generate", "--model", model.toString(), "--adapter", out.toString(), "--prompt", "abc =",
        "--max-new-tokens", "5");
    assertEquals(g.out(), again.out(), "greedy generation repeats itself");
  }

  @Test
  void ploraWritesAMergedModelThatEvaluatesAlike(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("merged");
    Run r = run("finetune", "--model", model.toString(), "--data", train.toString(), "--eval", evalFile.toString(),
        "--out", out.toString(), "--steps", "12", "--batch", "2", "--seq-len", "32", "--method", "plora",
        "--unload-every", "5", "--export-rank", "2", "--lr", "1e-2");
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isRegularFile(out.resolve("config.json")) && Files.isRegularFile(out.resolve("tokenizer.json")),
        "a complete model folder");
    assertTrue(Files.isRegularFile(out.resolve("adapter-rank-2").resolve(PeftAdapter.CONFIG)));
    assertTrue(r.out().contains("rank-2 fit of model.layers.0.self_attn.q_proj: relative error"), r.out());
    Map<?, ?> results = (Map<?, ?>) ((Map<?, ?>) Json.parse(Files.readString(out.resolve("run.json"))))
        .get("results");
    assertEquals(2L, ((Number) results.get("unloads")).longValue());
    double trained = ((Number) results.get("eval_loss")).doubleValue();
    Run e = run("eval", "--model", out.toString(), "--data", evalFile.toString(), "--seq-len", "32");
    assertEquals(0, e.code(), e.err());
    assertEquals(trained, Double.parseDouble(e.out().split(" ")[1]), 1e-5 * trained,
        "the merged folder alone gives the run's final eval loss");
    Run base = run("eval", "--model", model.toString(), "--data", evalFile.toString(), "--seq-len", "32");
    assertTrue(Math.abs(Double.parseDouble(base.out().split(" ")[1]) - trained) > 1e-3, "training changed the model");
  }

  /** --chat answers each line of stdin with the chat template applied to the whole conversation so far. */
  @Test
  void chatAnswersEachUserLine() throws Exception {
    java.io.InputStream stdin = System.in;
    try {
      System.setIn(new java.io.ByteArrayInputStream("hello\n\nand again\n".getBytes(
          java.nio.charset.StandardCharsets.UTF_8)));
      Run r = run("generate", "--model", model.toString(), "--chat", "--system", "be brief", "--max-new-tokens", "3");
      assertEquals(0, r.code(), r.err());
      assertEquals(2, r.err().lines().filter(l -> l.contains("new tokens")).count(), "two answers: " + r.err());
      Run prompt = run("generate", "--model", model.toString(), "--prompt", "x", "--chat");
      assertEquals(2, prompt.code(), "--prompt and --chat exclude each other");
    } finally {
      System.setIn(stdin);
    }
  }

  /** An adapter trained on another model is refused by eval and generate, naming the module. */
  @Test
  void anAdapterForAnotherModelIsRefused(@TempDir Path dir) throws Exception {
    Path other = Files.createDirectory(dir.resolve("other"));
    LlamaConfig config = LlamaConfig.read(model);
    LlamaConfig deeper = new LlamaConfig(config.architecture(), config.hiddenSize(), 64, config.layers(),
        config.heads(), config.kvHeads(), config.headDim(), config.vocabSize(), config.rmsNormEps(),
        config.ropeTheta(), null, false, false, false, config.maxPositionEmbeddings(), null);
    try (Backend backend = Backends.create("cpu");
        LlamaForCausalLM m = LlamaForCausalLM.initialize(backend, deeper, DType.F32, false, 2, 0.1f)) {
      m.saveMerged(other, Safetensors.Dtype.F32, false);
    }
    deeper.write(other, "float32", false);
    TestTokenizers.writeTo(other);
    Path adapter = dir.resolve("adapter");
    assertEquals(0, run("finetune", "--model", model.toString(), "--data", train.toString(), "--out",
        adapter.toString(), "--steps", "1", "--seq-len", "32", "--target-modules", "up_proj").code());
    for (Run r : List.of(run("eval", "--model", other.toString(), "--adapter", adapter.toString(), "--data",
        evalFile.toString(), "--seq-len", "32"), run("generate", "--model", other.toString(), "--adapter",
        adapter.toString(), "--prompt", "abc"))) {
      assertEquals(2, r.code(), r.err());
      assertTrue(r.err().contains("model.layers.0.mlp.up_proj") && r.err().lines().count() == 1, r.err());
    }
  }

  @Test
  void badInputsGiveOneLineAndExitTwoLeavingNothing(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("out");
    String[][] lines = {
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"\n", "bad.jsonl:2: "},
        {"{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"}\n", "bad.jsonl:2: "},
        {"{\"prompt\": \"a\", \"completion\": \"\"}\n", "bad.jsonl:1: "},
        {"{\"prompt\": \"a\", \"completion\": \"" + "x".repeat(100) + "\"}\n", "bad.jsonl:1: "}};
    for (String[] bad : lines) {
      Path data = Files.writeString(dir.resolve("bad.jsonl"), bad[0]);
      Run r = run("finetune", "--model", model.toString(), "--data", data.toString(), "--out", out.toString(),
          "--steps", "2", "--seq-len", "16", "--no-truncate");
      assertEquals(2, r.code(), r.err());
      assertTrue(r.err().startsWith("plora: --data: ") && r.err().contains(bad[1]), r.err());
      assertEquals(1, r.err().lines().count(), r.err());
      assertFalse(Files.exists(out), "nothing written for " + bad[0]);
    }
    Path skipped = Files.writeString(dir.resolve("skip.jsonl"), Files.readString(train) + "{\"prompt\": \"a\"}\n");
    Run r = run("finetune", "--model", model.toString(), "--data", skipped.toString(), "--out", out.toString(),
        "--steps", "1", "--seq-len", "32", "--skip-bad");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("skipped 1"), r.err());

    Path noTokenizer = Files.createDirectory(dir.resolve("bare"));
    for (String f : List.of("config.json", "model.safetensors")) {
      Files.copy(model.resolve(f), noTokenizer.resolve(f));
    }
    r = run("finetune", "--model", noTokenizer.toString(), "--data", train.toString(), "--out",
        dir.resolve("o2").toString(), "--steps", "1");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("tokenizer.json"), r.err());
    assertFalse(Files.exists(dir.resolve("o2")));

    r = run("finetune", "--model", model.toString(), "--data", train.toString(), "--out", out.toString(), "--steps",
        "1", "--seq-len", "32");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("not empty") && r.err().contains("--force"), r.err());

    Path file = Files.writeString(dir.resolve("afile"), "x");
    r = run("finetune", "--model", model.toString(), "--data", train.toString(), "--out",
        file.resolve("sub").toString(), "--steps", "1");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().startsWith("plora: "), r.err());

    r = run("eval", "--model", model.toString(), "--adapter", dir.toString(), "--data", train.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("adapter"), r.err());
  }
}
