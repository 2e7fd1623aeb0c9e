package dev.plora.testing;

import dev.plora.io.HfCheckpoint;
import dev.plora.io.Safetensors;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.tensor.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/** Tiny random Hugging Face checkpoints of the Llama family: 2 layers, 4 heads over 2 kv heads of 6, vocab 37. */
public final class TinyLlama {
  public static final String CONFIG = """
      {"architectures": ["%s"], "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
       "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 6, "vocab_size": 37,
       "rms_norm_eps": 1e-5, "rope_theta": 10000.0%s}""";

  private TinyLlama() {}

  /**
   * Writes config.json ({@code extra}: more JSON members, each after a comma) and random weights
   * (rounded to {@code dtype}), one file or two shards; returns the weights by name.
   */
  public static Map<String, float[]> write(Path dir, String architecture, String extra, DType dtype, boolean sharded,
      SplittableRandom rng) throws Exception {
    Files.writeString(dir.resolve("config.json"), CONFIG.formatted(architecture, extra));
    LlamaConfig config = LlamaConfig.read(dir);
    Map<String, long[]> shapes = config.tensorShapes();
    Map<String, float[]> values = new LinkedHashMap<>();
    shapes.forEach((name, shape) -> {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      float[] v = Reference.random(rng, (int) n, DType.F32);
      boolean norm = name.endsWith("norm.weight");
      for (int i = 0; i < v.length; i++) {
        v[i] = dtype.round(norm ? 1 + 0.2f * v[i] : 0.4f * v[i]);
      }
      values.put(name, v);
    });
    Safetensors.Dtype fileType = Safetensors.Dtype.of(dtype);
    if (!sharded) {
      Safetensors.writeFloats(dir.resolve(HfCheckpoint.SINGLE), values, shapes, fileType, Map.of("format", "pt"), false);
    } else {
      Map<String, float[]> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
      StringBuilder map = new StringBuilder();
      for (String name : values.keySet()) {
        boolean one = name.startsWith("model.layers.0.") || name.startsWith("model.embed");
        (one ? first : second).put(name, values.get(name));
        map.append(map.length() == 0 ? "" : ", ").append('"').append(name).append("\": \"model-0000")
            .append(one ? 1 : 2).append("-of-00002.safetensors\"");
      }
      Safetensors.writeFloats(dir.resolve("model-00001-of-00002.safetensors"), first, shapes, fileType, Map.of(), false);
      Safetensors.writeFloats(dir.resolve("model-00002-of-00002.safetensors"), second, shapes, fileType, Map.of(),
          false);
      Files.writeString(dir.resolve(HfCheckpoint.INDEX), "{\"weight_map\": {" + map + "}}");
    }
    return values;
  }
}
