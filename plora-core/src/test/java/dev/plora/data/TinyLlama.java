package dev.plora.data;

import dev.plora.backend.Backend;
import dev.plora.io.Json;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import dev.plora.testing.Reference;
import java.io.IOException;
import java.util.SplittableRandom;

/** A two-layer F32 Llama of vocabulary 37 with random weights drawn from a seed. */
final class TinyLlama {
  static final int VOCAB = 37;

  private TinyLlama() {}

  static LlamaForCausalLM build(Backend backend, long seed) throws IOException {
    LlamaConfig config = LlamaConfig.parse(Json.parse("""
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 37,
         "rms_norm_eps": 1e-5, "rope_theta": 10000.0}"""));
    SplittableRandom rng = new SplittableRandom(seed);
    return LlamaForCausalLM.build(backend, config, (name, dst) -> {
      float[] v = Reference.random(rng, dst.rows() * dst.cols(), DType.F32);
      boolean norm = name.endsWith("norm.weight");
      for (int i = 0; i < v.length; i++) {
        v[i] = norm ? 1 + 0.2f * v[i] : 0.4f * v[i];
      }
      dst.copyFrom(v);
    }, DType.F32, false);
  }
}
