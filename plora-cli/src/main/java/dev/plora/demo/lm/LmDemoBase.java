package dev.plora.demo.lm;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.finetune.FineTune;
import dev.plora.finetune.FineTuneSettings;
import dev.plora.finetune.Method;
import dev.plora.io.AtomicFiles;
import dev.plora.io.Json;
import dev.plora.io.Safetensors;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The demo's base model and its languages. The base is a two-layer Llama (hidden 64, 4 heads,
 * SwiGLU 128, vocabulary 64, F32) that plora pretrained on a family of sixteen bigram languages:
 * one random language and fifteen relabellings of its inputs. It knows every token's successor set
 * but not which relabelling a sequence uses. The demo fine-tunes it on a relabelling it never saw.
 *
 * <p>The jar ships the base ({@link #RESOURCE}); {@link #remake} is the recipe that made it, and
 * remakes it bit for bit on the same CPU kernels (a test compares the two).
 */
public final class LmDemoBase {
  public static final int HIDDEN = 64, INTERMEDIATE = 128, LAYERS = 2, HEADS = 4, VOCAB = 64, SEQ_LEN = 64;
  /** Successors per token in every language. */
  public static final int BRANCH = 4;
  /** Languages in the pretraining family. */
  public static final int FAMILY = 16;
  public static final int PRETRAIN_STEPS = 400, PRETRAIN_BATCH = 8;
  public static final double PRETRAIN_LR = 3e-3;
  public static final long SEED = 1;
  /** Where the jar keeps the base folder's files. */
  public static final String RESOURCE = "/dev/plora/demo/lm/base/";
  private static final List<String> FILES = List.of("config.json", "model.safetensors");

  private LmDemoBase() {}

  /** The first language of the pretraining family. */
  public static BigramLanguage language() {
    return BigramLanguage.of(VOCAB, BRANCH, SEQ_LEN, SEED);
  }

  /** The pretraining family: {@link #language()} and its relabellings by seeds 101…115. */
  public static List<BigramLanguage> family() {
    List<BigramLanguage> family = new ArrayList<>(List.of(language()));
    for (int k = 1; k < FAMILY; k++) {
      family.add(language().permuted(100 + k));
    }
    return family;
  }

  /** The language the demo of seed {@code seed} fine-tunes on: a relabelling outside the family. */
  public static BigramLanguage fineTuneLanguage(long seed) {
    return language().permuted(1000 + seed);
  }

  public static LlamaConfig config() {
    return LlamaConfig.parse(Json.parse("""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d,
         "intermediate_size": %d, "num_hidden_layers": %d, "num_attention_heads": %d,
         "num_key_value_heads": %d, "vocab_size": %d, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "max_position_embeddings": %d, "tie_word_embeddings": false}"""
        .formatted(HIDDEN, INTERMEDIATE, LAYERS, HEADS, HEADS, VOCAB, 2 * SEQ_LEN)));
  }

  /** Writes the shipped base (config.json, model.safetensors) into {@code dir}. */
  public static void extract(Path dir) throws IOException {
    Files.createDirectories(dir);
    for (String name : FILES) {
      try (InputStream in = LmDemoBase.class.getResourceAsStream(RESOURCE + name)) {
        if (in == null) {
          throw new IllegalStateException("the demo's base model is missing from the class path: " + RESOURCE + name);
        }
        AtomicFiles.write(dir.resolve(name), in.readAllBytes(), true);
      }
    }
  }

  /**
   * Pretrains the base from scratch into {@code dir} (config.json, model.safetensors): Hugging Face's
   * initialisation from seed 1, then {@value #PRETRAIN_STEPS} steps of full fine-tuning on the family
   * (AdamW, lr {@value #PRETRAIN_LR}, cosine schedule, batch {@value #PRETRAIN_BATCH}) on the CPU.
   */
  public static void remake(Path dir) throws IOException {
    Path work = Files.createTempDirectory("plora-demo-base");
    try {
      Path init = work.resolve("init"), trained = work.resolve("trained");
      LlamaConfig config = config();
      try (Backend backend = Backends.create("cpu");
          LlamaForCausalLM m = LlamaForCausalLM.initialize(backend, config, DType.F32, false, SEED, 0.02f)) {
        m.saveMerged(init, Safetensors.Dtype.F32, true);
      }
      config.write(init, "float32", true);
      FineTune.builder(FineTuneSettings.builder(init, trained).method(Method.FULL).steps(PRETRAIN_STEPS)
              .lr(PRETRAIN_LR).schedule("cosine").warmup(PRETRAIN_STEPS / 20).backend("cpu").dtype(DType.F32)
              .seed(SEED).evalEvery(0).saveEvery(Integer.MAX_VALUE, 1).force(true).build())
          .train(BigramLanguage.mixture(family(), PRETRAIN_BATCH, SEED)).build().run();
      Files.createDirectories(dir);
      for (String name : FILES) {
        AtomicFiles.write(dir.resolve(name), Files.readAllBytes(trained.resolve(name)), true);
      }
    } finally {
      deleteTree(work);
    }
  }

  static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
