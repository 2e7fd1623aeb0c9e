package dev.plora.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.io.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
  /** The shape of a Llama 3.2 1B config.json (tied embeddings, llama3 RoPE scaling, GQA). */
  static final String LLAMA_32 = """
      {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
       "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
       "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072,
       "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
       "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
       "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
       "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
       "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256}
      """;

  static LlamaConfig parse(String json) {
    return LlamaConfig.parse(Json.parse(json));
  }

  static String with(String json, String field, String value) {
    return json.replaceFirst("\\{", "{\"" + field + "\": " + value + ", ");
  }

  @Test
  void readsALlama32Config(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("config.json"), LLAMA_32);
    LlamaConfig c = LlamaConfig.read(dir);
    assertEquals(LlamaConfig.Architecture.LLAMA, c.architecture());
    assertEquals(2048, c.hiddenSize());
    assertEquals(32, c.heads());
    assertEquals(8, c.kvHeads());
    assertEquals(4, c.groupSize());
    assertEquals(64, c.headDim());
    assertEquals(1e-5, c.rmsNormEps());
    assertEquals(500000.0, c.ropeTheta());
    assertTrue(c.tieWordEmbeddings());
    assertEquals(new LlamaConfig.Llama3Scaling(32, 1, 4, 8192), c.ropeScaling());
    Map<String, long[]> shapes = c.tensorShapes();
    assertEquals(2 + 16 * 9, shapes.size()); // embed, norm, and 9 per layer; no lm_head (tied)
    assertArrayEquals(new long[] {512, 2048}, shapes.get("model.layers.3.self_attn.k_proj.weight"));
    assertArrayEquals(new long[] {2048, 8192}, shapes.get("model.layers.15.mlp.down_proj.weight"));
    assertFalse(shapes.containsKey("lm_head.weight"));
    assertTrue(c.ignorable("lm_head.weight"));
    assertTrue(c.ignorable("model.layers.0.self_attn.rotary_emb.inv_freq"));
  }

  /** config.json written from a config reads back as the same config, for every variant. */
  @Test
  void aWrittenConfigReadsBackEqual(@TempDir Path dir) throws Exception {
    String noScaling = LLAMA_32.replaceFirst("\"rope_scaling\": \\{[^}]*\\}", "\"rope_scaling\": null");
    for (String json : new String[] {LLAMA_32, LLAMA_32.replace("LlamaForCausalLM", "Qwen2ForCausalLM"),
        noScaling.replace("LlamaForCausalLM", "Qwen3ForCausalLM"),
        with(noScaling.replace("LlamaForCausalLM", "MistralForCausalLM"), "sliding_window", "4096")}) {
      LlamaConfig c = parse(json);
      c.write(dir, "bfloat16", true);
      assertEquals(c, LlamaConfig.read(dir), json);
      assertEquals("bfloat16", ((Map<?, ?>) Json.parse(Files.readString(dir.resolve("config.json"))))
          .get("torch_dtype"));
    }
  }

  @Test
  void defaultsAreHuggingFacesAndArchitecturesAddTheirTensors() {
    String base = """
        {"architectures": ["%s"], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 100}""";
    LlamaConfig llama = parse(base.formatted("LlamaForCausalLM"));
    assertEquals(4, llama.kvHeads()); // no GQA unless asked
    assertEquals(16, llama.headDim());
    assertEquals(1e-6, llama.rmsNormEps());
    assertEquals(10000.0, llama.ropeTheta());
    assertFalse(llama.tieWordEmbeddings());
    assertTrue(llama.tensorShapes().containsKey("lm_head.weight"));
    assertFalse(llama.tensorShapes().containsKey("model.layers.0.self_attn.q_proj.bias"));

    Map<String, long[]> qwen2 = parse(base.formatted("Qwen2ForCausalLM")).tensorShapes();
    assertArrayEquals(new long[] {64}, qwen2.get("model.layers.1.self_attn.q_proj.bias"));
    assertArrayEquals(new long[] {64}, qwen2.get("model.layers.1.self_attn.v_proj.bias"));
    assertFalse(qwen2.containsKey("model.layers.1.self_attn.o_proj.bias"));

    Map<String, long[]> qwen3 = parse(base.formatted("Qwen3ForCausalLM")).tensorShapes();
    assertArrayEquals(new long[] {16}, qwen3.get("model.layers.0.self_attn.k_norm.weight"));
    assertFalse(qwen3.containsKey("model.layers.0.self_attn.q_proj.bias"));

    Map<String, long[]> biased = parse(with(base.formatted("LlamaForCausalLM"), "attention_bias", "true")).tensorShapes();
    assertArrayEquals(new long[] {64}, biased.get("model.layers.0.self_attn.o_proj.bias"));

    assertEquals(4096, parse(with(base.formatted("MistralForCausalLM"), "sliding_window", "4096")).slidingWindow());
    assertNull(parse(with(base.formatted("Qwen2ForCausalLM"), "sliding_window", "4096")).slidingWindow(),
        "Qwen2 slides only with use_sliding_window");
  }

  @Test
  void inverseFrequenciesFollowLlama3Scaling() {
    LlamaConfig plain = parse(LLAMA_32.replaceFirst("\"rope_scaling\": \\{[^}]*\\}", "\"rope_scaling\": null"));
    LlamaConfig scaled = parse(LLAMA_32);
    float[] base = plain.inverseFrequencies(), inv = scaled.inverseFrequencies();
    assertEquals(32, base.length);
    for (int j = 0; j < base.length; j++) {
      assertEquals(Math.pow(500000, -2.0 * j / 64), base[j], 2e-7 * base[j], "theta^(-2j/d) at " + j);
      double wavelen = 2 * Math.PI / base[j];
      if (wavelen < 8192 / 4.0) {
        assertEquals(base[j], inv[j], "high frequency " + j + " unchanged");
      } else if (wavelen > 8192 / 1.0) {
        assertEquals(base[j] / 32, inv[j], 1e-7 * base[j], "low frequency " + j + " divided by the factor");
      } else {
        assertTrue(inv[j] < base[j] && inv[j] > base[j] / 32, "medium frequency " + j + " between");
      }
      if (j > 0) {
        assertTrue(inv[j] < inv[j - 1], "decreasing at " + j);
      }
    }
  }

  @Test
  void refusesWhatItCannotComputeAsTheReferenceDoes() {
    assertRefused(LLAMA_32.replace("LlamaForCausalLM", "GemmaForCausalLM"), "GemmaForCausalLM", "Qwen3ForCausalLM");
    assertRefused(LLAMA_32.replace("\"silu\"", "\"gelu\""), "hidden_act", "gelu");
    assertRefused(LLAMA_32.replace("\"llama3\"", "\"yarn\""), "rope_scaling", "yarn");
    assertRefused(LLAMA_32.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"), "num_key_value_heads");
    assertRefused(LLAMA_32.replace("\"hidden_size\": 2048,", ""), "hidden_size", "missing");
    assertRefused(LLAMA_32.replace("\"vocab_size\": 128256", "\"vocab_size\": 1.5"), "vocab_size", "integer");
    assertRefused(with(LLAMA_32, "partial_rotary_factor", "0.5"), "partial_rotary_factor");
  }

  @Test
  void aMissingOrBrokenConfigNamesTheFile(@TempDir Path dir) throws Exception {
    IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(dir));
    assertTrue(missing.getMessage().contains("config.json"), missing.getMessage());
    Files.writeString(dir.resolve("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"],");
    IllegalArgumentException broken = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.read(dir));
    assertTrue(broken.getMessage().startsWith(dir.resolve("config.json").toString()), broken.getMessage());
  }

  private static void assertRefused(String json, String... mentions) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> parse(json));
    for (String m : mentions) {
      assertTrue(e.getMessage().contains(m), "\"" + e.getMessage() + "\" should mention " + m);
    }
  }
}
