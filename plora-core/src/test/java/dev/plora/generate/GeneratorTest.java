package dev.plora.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraAdapter;
import dev.plora.lora.LoraConfig;
import dev.plora.model.KvCache;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.testing.Reference;
import dev.plora.testing.TinyLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Generation with the KV cache on tiny random checkpoints, against full forward passes. */
class GeneratorTest {
  private static final int[] PROMPT = {3, 17, 36, 0, 5};
  private final SplittableRandom rng = new SplittableRandom(301);

  private LlamaForCausalLM tinyModel(Backend backend, Path dir, String arch, DType dtype) throws Exception {
    TinyLlama.write(dir, arch, "", dtype, false, rng);
    return LlamaForCausalLM.load(backend, dir, dtype, false);
  }

  /** The logits of the last token of {@code seq} by a full forward pass over the whole sequence. */
  private static float[] fullLastLogits(Backend backend, LlamaForCausalLM model, int[] seq) {
    try (TokenBatch batch = TokenBatch.pack(backend, List.of(seq), null); Tensor logits = model.logits(batch)) {
      return logits.rowsView(seq.length - 1, 1).toFloatArray();
    }
  }

  /**
   * Greedy generation with the cache takes, at every step, the argmax of a full forward pass over
   * the whole sequence so far, and the cached step's logits are those of the full pass.
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"llama GQA F32", "qwen3 q/k norms F32", "llama LoRA F32", "llama GQA BF16",
      "qwen3 q/k norms BF16", "llama LoRA BF16"})
  void greedyWithCacheIsArgmaxOfFullForwards(String variant, @TempDir Path dir) throws Exception {
    DType dtype = variant.endsWith("BF16") ? DType.BF16 : DType.F32;
    String arch = variant.startsWith("qwen3") ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
    // the two attention kernels sum in different orders: F32 measured up to 1.7e-6 (LoRA); BF16 measured
    // bit-identical here (the bf16 roundings absorb the difference), bounded by bf16's 1e-2 all the same
    double tolerance = dtype == DType.F32 ? 1e-5 : 1e-2;
    int steps = 12;
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = tinyModel(backend, dir, arch, dtype)) {
      if (variant.contains("LoRA")) {
        var adapters = Lora.inject(model, LoraConfig.builder().r(2).alpha(4).targetModules("all-linear").build());
        for (LoraAdapter a : adapters.values()) { // B = 0 at init: make the adapters change the outputs
          a.masterB().copyFrom(Reference.random(rng, a.masterB().rows() * 2, DType.F32));
          a.sync();
        }
      }
      int[] generated = new Generator(model, GenerationConfig.greedy(steps)).generate(PROMPT).tokens();
      assertEquals(steps, generated.length);
      model.train(false);
      try (KvCache cache = model.newCache(PROMPT.length + steps)) {
        int[] seq = PROMPT.clone();
        float[] cached = model.decode(PROMPT, cache);
        for (int step = 0; step < steps; step++) {
          float[] full = fullLastLogits(backend, model, seq);
          double[] ref = new double[full.length];
          for (int i = 0; i < full.length; i++) {
            ref[i] = full[i];
          }
          double err = Reference.relativeError(cached, ref);
          assertTrue(err <= tolerance, variant + " step " + step + ": cached logits relative error " + err);
          assertEquals(Sampler.argmax(full), generated[step], variant + " step " + step + ": " + Arrays.toString(
              generated));
          seq = Arrays.copyOf(seq, seq.length + 1);
          seq[seq.length - 1] = generated[step];
          cached = model.decode(new int[] {generated[step]}, cache);
        }
        assertEquals(PROMPT.length + steps, cache.length());
      }
    }
  }

  /** A prompt fed in two chunks (the second attending to the first through the cache) gives one prefill's logits. */
  @Test
  void aPromptInChunksEqualsOnePrefill(@TempDir Path dir) throws Exception {
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = tinyModel(backend, dir,
        "Qwen3ForCausalLM", DType.F32); KvCache one = model.newCache(8); KvCache two = model.newCache(8)) {
      float[] whole = model.decode(PROMPT, one);
      model.decode(Arrays.copyOf(PROMPT, 2), two);
      float[] chunked = model.decode(Arrays.copyOfRange(PROMPT, 2, PROMPT.length), two);
      double[] ref = new double[whole.length];
      for (int i = 0; i < ref.length; i++) {
        ref[i] = whole[i];
      }
      assertTrue(Reference.relativeError(chunked, ref) <= 1e-6, "chunked prefill");
      assertEquals(PROMPT.length, two.length());
    }
  }

  @Test
  void aFullCacheIsAClearErrorAndKeepsItsState(@TempDir Path dir) throws Exception {
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = tinyModel(backend, dir,
        "LlamaForCausalLM", DType.F32); KvCache cache = model.newCache(6)) {
      model.decode(PROMPT, cache);
      float[] sixth = model.decode(new int[] {1}, cache);
      assertEquals(6, cache.length());
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.decode(new int[] {2}, cache));
      assertTrue(e.getMessage().contains("KV cache full") && e.getMessage().contains("6 of maxTokens 6"),
          e.getMessage());
      assertEquals(6, cache.length());
      cache.clear();
      assertThrows(IllegalStateException.class, () -> model.decode(new int[7], cache));
      assertEquals(0, cache.length());
      // a bad token id fails in the embedding and leaves the cache as it was
      model.decode(PROMPT, cache);
      assertThrows(IllegalArgumentException.class, () -> model.decode(new int[] {37}, cache));
      assertEquals(5, cache.length());
      assertArrayEquals(sixth, model.decode(new int[] {1}, cache), "the same step again after the refusal");
    }
  }

  @Test
  void stopsAtAStopTokenAndReportsEachToken(@TempDir Path dir) throws Exception {
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = tinyModel(backend, dir,
        "LlamaForCausalLM", DType.F32)) {
      GenerationConfig sampling = GenerationConfig.sampling(20, 1.5f, 11);
      int[] free = new Generator(model, sampling).generate(PROMPT).tokens();
      assertEquals(20, free.length);
      int stop = free[6], first = 0;
      while (free[first] != stop) {
        first++;
      }
      List<Integer> seen = new ArrayList<>();
      Generator.Result r = new Generator(model, sampling.withStopTokenIds(Set.of(stop, 999)))
          .generate(PROMPT, seen::add);
      assertArrayEquals(Arrays.copyOf(free, first + 1), r.tokens(), "the same draws, ending at the stop token");
      assertEquals(Generator.StopReason.STOP_TOKEN, r.stopReason());
      assertEquals(Arrays.stream(r.tokens()).boxed().toList(), seen);
      assertEquals(PROMPT.length, r.stats().promptTokens());
      assertEquals(first + 1, r.stats().newTokens());
      assertEquals(Generator.StopReason.MAX_NEW_TOKENS,
          new Generator(model, GenerationConfig.greedy(3)).generate(PROMPT).stopReason());
    }
  }

  @Test
  void samplingIsDeterministicBySeed(@TempDir Path dir) throws Exception {
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = tinyModel(backend, dir,
        "Qwen3ForCausalLM", DType.F32)) {
      GenerationConfig config = GenerationConfig.sampling(16, 1.5f, 7).withTopK(20).withTopP(0.95f);
      int[] a = new Generator(model, config).generate(PROMPT).tokens();
      int[] b = new Generator(model, config).generate(PROMPT).tokens();
      int[] c = new Generator(model, config.withSeed(8)).generate(PROMPT).tokens();
      assertArrayEquals(a, b, "same seed, same tokens");
      assertFalse(Arrays.equals(a, c), "another seed, other tokens: " + Arrays.toString(a));
    }
  }

  @Test
  void refusesBadPrompts(@TempDir Path dir) throws Exception {
    try (Backend backend = Backends.create("cpu"); LlamaForCausalLM model = tinyModel(backend, dir,
        "LlamaForCausalLM", DType.F32)) {
      Generator g = new Generator(model, GenerationConfig.greedy(2));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.generate(new int[] {1, 40}));
      assertTrue(e.getMessage().contains("40") && e.getMessage().contains("[0, 37)"), e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> g.generate(new int[0]));
    }
  }
}
