package dev.plora.lora;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.io.PeftAdapter;
import dev.plora.model.Linear;
import dev.plora.model.Module;
import dev.plora.model.ModuleList;
import dev.plora.tensor.DType;
import dev.plora.tensor.TensorScope;
import dev.plora.testing.Reference;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Adapters put in by module name as PEFT does: names, regex, all-linear, layers, rank and alpha patterns. */
class LoraInjectionTest {
  private static final List<String> PROJ = List.of("q_proj", "k_proj", "v_proj", "o_proj");

  /** model.layers.{0,1,2}.self_attn.{q,k,v,o}_proj and lm_head, with Hugging Face's names. */
  static final class Attention extends Module {
    Attention(TensorScope s, SplittableRandom rng) {
      for (String name : PROJ) {
        register(name, new Linear(s.fromArray(Reference.random(rng, 8 * 6, DType.F32), 8, 6, DType.F32), null, false));
      }
    }
  }

  static final class Decoder extends Module {
    Decoder(TensorScope s, SplittableRandom rng) {
      register("self_attn", new Attention(s, rng));
    }
  }

  static final class Inner extends Module {
    Inner(TensorScope s, SplittableRandom rng) {
      register("layers", new ModuleList<>(Decoder.class, List.of(new Decoder(s, rng), new Decoder(s, rng),
          new Decoder(s, rng))));
    }
  }

  static final class Causal extends Module {
    Causal(TensorScope s, SplittableRandom rng) {
      register("model", new Inner(s, rng));
      register("lm_head", new Linear(s.fromArray(Reference.random(rng, 5 * 6, DType.F32), 5, 6, DType.F32), null,
          false));
    }

    @Override
    public String outputHead() {
      return "lm_head";
    }
  }

  private static List<String> paths(int... layers) {
    List<String> out = new java.util.ArrayList<>();
    for (int l : layers) {
      for (String p : PROJ) {
        out.add("model.layers." + l + ".self_attn." + p);
      }
    }
    return out;
  }

  private static Map<String, LoraAdapter> inject(LoraConfig.Builder config) {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend);
        Causal model = new Causal(s, new SplittableRandom(3))) {
      Map<String, LoraAdapter> adapted = Lora.inject(model, config.build());
      for (Map.Entry<String, LoraAdapter> e : adapted.entrySet()) {
        assertInstanceOf(LoraLinear.class, model.module(e.getKey()), e.getKey() + " is wrapped in place");
      }
      return adapted;
    }
  }

  @Test
  void targetsByNameRegexAndAllLinear() {
    Map<String, LoraAdapter> qv = inject(LoraConfig.builder().targetModules("q_proj", "v_proj"));
    assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
        "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.2.self_attn.q_proj",
        "model.layers.2.self_attn.v_proj"), List.copyOf(qv.keySet()));
    assertEquals(List.of(0, 1, 2, 3, 4, 5), qv.values().stream().map(LoraAdapter::index).toList(),
        "adapters number their random streams in model order");

    Map<String, LoraAdapter> regex = inject(LoraConfig.builder().targetModulesRegex(".*\\.layers\\.1\\..*_proj"));
    assertEquals(paths(1), List.copyOf(regex.keySet()));

    List<String> all = paths(0, 1, 2);
    assertEquals(all, List.copyOf(inject(LoraConfig.builder().targetModules(LoraConfig.ALL_LINEAR)).keySet()),
        "all-linear leaves out the output head");
    List<String> withHead = new java.util.ArrayList<>(all);
    withHead.add("lm_head");
    assertEquals(withHead, List.copyOf(inject(LoraConfig.builder().targetModulesRegex(".*proj|lm_head")).keySet()),
        "the head is adapted when named");
  }

  @Test
  void layersToTransformAndPatterns() {
    Map<String, LoraAdapter> layers = inject(LoraConfig.builder().targetModules(PROJ).layersToTransform(0, 2));
    assertEquals(paths(0, 2), List.copyOf(layers.keySet()));
    assertEquals(paths(1), List.copyOf(inject(LoraConfig.builder().targetModules(PROJ).layersToTransform(1)
        .layersPattern("layers")).keySet()));

    Map<String, Integer> ranks = new LinkedHashMap<>();
    ranks.put("v_proj", 4);
    ranks.put("layers\\.2\\.self_attn\\.q_proj", 3);
    Map<String, Float> alphas = Map.of("model\\.layers\\.0\\.self_attn\\.q_proj", 32f);
    Map<String, LoraAdapter> patterned = inject(LoraConfig.builder().r(2).alpha(8).targetModules("q_proj", "v_proj")
        .rankPattern(ranks).alphaPattern(alphas));
    Map<String, float[]> expected = Map.of( // r, alpha
        "model.layers.0.self_attn.q_proj", new float[] {2, 32}, "model.layers.0.self_attn.v_proj", new float[] {4, 8},
        "model.layers.1.self_attn.q_proj", new float[] {2, 8}, "model.layers.2.self_attn.q_proj", new float[] {3, 8},
        "model.layers.2.self_attn.v_proj", new float[] {4, 8});
    for (Map.Entry<String, float[]> e : expected.entrySet()) {
      LoraAdapter l = patterned.get(e.getKey());
      assertEquals((int) e.getValue()[0], l.r(), e.getKey() + ": r");
      assertEquals(e.getValue()[1] / e.getValue()[0], l.scaling(), 1e-6, e.getKey() + ": scaling alpha / r");
    }
  }

  @Test
  void aConfigThatMatchesNothingIsRefusedNamingItsTargets() {
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend);
        Causal model = new Causal(s, new SplittableRandom(4))) {
      assertRefused(IllegalArgumentException.class, () -> Lora.inject(model, LoraConfig.builder()
          .targetModules("query", "value").build()), "[query, value]", "model.layers.0.self_attn.q_proj", "more");
      assertRefused(IllegalArgumentException.class, () -> Lora.inject(model, LoraConfig.builder()
          .targetModules("q_proj").layersToTransform(7).build()), "layersToTransform [7]");
      assertRefused(IllegalArgumentException.class, () -> Lora.inject(model, LoraConfig.builder().build()),
          "targetModules is not set");
      assertInstanceOf(Linear.class, model.module("model.layers.0.self_attn.q_proj"), "a refusal changes nothing");
      assertRefused(IllegalArgumentException.class, () -> LoraConfig.builder().targetModulesRegex("(").build(),
          "targetModulesRegex");
      assertRefused(IllegalArgumentException.class, () -> LoraConfig.builder().rankPattern(Map.of("q", 0)).build(),
          "rankPattern['q']");
    }
  }

  @Test
  void aModelsAdaptersRoundTripThroughPeft(@TempDir Path dir) throws Exception {
    Map<String, Integer> ranks = Map.of("v_proj", 3);
    Map<String, Float> alphas = Map.of("layers\\.1\\.self_attn\\.q_proj", 24f);
    LoraConfig config = LoraConfig.builder().r(2).alpha(8).targetModules("q_proj", "v_proj").rankPattern(ranks)
        .alphaPattern(alphas).seed(9).build();
    try (Backend backend = new CpuBackend(); TensorScope s = new TensorScope(backend);
        Causal trained = new Causal(s, new SplittableRandom(5)); Causal fresh = new Causal(s, new SplittableRandom(5))) {
      Map<String, LoraAdapter> out = Lora.inject(trained, config);
      SplittableRandom rng = new SplittableRandom(6);
      for (LoraAdapter l : out.values()) { // as if trained: B non-zero
        l.masterB().copyFrom(Reference.random(rng, l.masterB().rows() * l.r(), DType.F32));
        l.sync();
      }
      PeftAdapter.save(dir, out, false);
      Map<String, LoraAdapter> in = Lora.inject(fresh, config.toBuilder().seed(10).build());
      PeftAdapter.load(dir, in);
      for (String path : out.keySet()) {
        assertArrayEquals(out.get(path).masterA().toFloatArray(), in.get(path).masterA().toFloatArray(), path + " A");
        assertArrayEquals(out.get(path).masterB().toFloatArray(), in.get(path).masterB().toFloatArray(), path + " B");
        assertArrayEquals(out.get(path).loraB().toFloatArray(), in.get(path).loraB().toFloatArray(), path + " B copy");
      }
      PeftAdapter.Config saved = PeftAdapter.read(dir).config();
      for (String path : out.keySet()) {
        assertEquals(out.get(path).r(), saved.rank(path), path + ": r in the file");
        assertEquals(out.get(path).scaling(), saved.scaling(path), 1e-6, path + ": scaling in the file");
      }
      Map<String, LoraAdapter> fewer = new LinkedHashMap<>(in);
      fewer.remove("model.layers.0.self_attn.q_proj");
      assertRefused(IllegalArgumentException.class, () -> PeftAdapter.load(dir, fewer), "not in the model",
          "model.layers.0.self_attn.q_proj");
    }
  }
}
