package dev.plora.bench;

import dev.plora.backend.Backend;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.model.InputShape;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * One step of a Llama-shaped model with random weights, on one sequence: a LoRA training step
 * (r = 16 on all seven projections), the same step with the adapters removed (the frozen base's
 * forward and backward, what any adapter pays), a full fine-tuning step and an inference pass. FLOPs count
 * the step's GEMMs (forward 2·tokens·params of the projections and head; backward the dX GEMMs,
 * and for full fine-tuning the dW GEMMs too) plus attention (4·T²·head_dim·heads per layer
 * forward, half of it under the causal mask, 2.5× that in backward). The names say which bytes
 * each result reports: activation bytes (the plan's arena) and all native bytes after the step.
 * The checkpointed LoRA step recomputes each layer's forward in backward, counted as work done.
 */
public final class LmBench {
  public static final String FAMILY = "lm";

  /** The default shape: hidden 1024, 8 layers, 16 heads / 4 kv heads, intermediate 2816, vocab 32000. */
  public static final LlamaConfig DEFAULT = new LlamaConfig(LlamaConfig.Architecture.LLAMA, 1024, 2816, 8, 16, 4, 64,
      32000, 1e-5, 10000, null, false, false, false, 4096, null);
  public static final int DEFAULT_SEQUENCE = 512;

  private final Backend backend;
  private final DType dtype;
  private final Timing timing;

  public LmBench(Backend backend, DType dtype, Timing timing) {
    this.backend = backend;
    this.dtype = dtype;
    this.timing = timing;
  }

  public List<BenchResult> run(LlamaConfig config, int sequence, Consumer<String> notes) {
    List<BenchResult> out = new ArrayList<>();
    int[] ids = new int[sequence];
    SplittableRandom rng = new SplittableRandom(5);
    for (int t = 0; t < sequence; t++) {
      ids[t] = rng.nextInt(config.vocabSize());
    }
    long h = config.hiddenSize(), q = (long) config.heads() * config.headDim();
    long kv = (long) config.kvHeads() * config.headDim(), inter = config.intermediateSize();
    long projections = config.layers() * (h * q + 2 * h * kv + q * h + 3 * h * inter);
    long head = (long) config.vocabSize() * h;
    long attention = config.layers() * 2L * sequence * sequence * config.headDim() * config.heads(); // causal half
    long forward = 2L * sequence * (projections + head) + attention;
    long backwardDx = 2L * sequence * (projections + head) + (long) (2.5 * attention);
    String shape = String.format(Locale.ROOT, "hidden=%d,layers=%d,heads=%d/%d,inter=%d,vocab=%d,T=%d", h,
        config.layers(), config.heads(), config.kvHeads(), inter, config.vocabSize(), sequence);
    long recomputed = 2L * sequence * projections + attention; // the layers' forward, again in backward
    for (String mode : List.of("lm_lora_step", "lm_lora_step_checkpointed", "lm_frozen_step", "lm_full_step",
        "lm_inference")) {
      boolean full = mode.equals("lm_full_step"), checkpointed = mode.endsWith("_checkpointed");
      try (LlamaForCausalLM model = LlamaForCausalLM.build(backend, config, (name, t) ->
          backend.fillUniform(t, -0.02f, 0.02f, 11, name.hashCode()), dtype, full);
          TokenBatch batch = TokenBatch.pack(backend, List.of(ids), null)) {
        model.checkpointLayers(checkpointed);
        if (mode.startsWith("lm_lora_step")) {
          Lora.inject(model, LoraConfig.builder().r(16).alpha(32).targetModules("q_proj", "k_proj", "v_proj", "o_proj",
              "gate_proj", "up_proj", "down_proj").build());
        }
        boolean backward = !mode.equals("lm_inference");
        double[] ms = timing.measure(backend, () -> model.forward(batch, backward));
        long flops = forward + (backward ? backwardDx : 0) + (full ? 2L * sequence * (projections + head) : 0)
            + (checkpointed ? recomputed : 0);
        out.add(BenchResult.of(mode, shape, ms, 0, flops));
        var plan = model.plan(InputShape.ofRows(sequence));
        double keptRows = plan.keptBytes() / (double) sequence / config.layers() / (h * dtype.byteSize());
        notes.accept(String.format(Locale.ROOT, "%s: %.1f tokens/s, activations %.1f MiB (kept %.2f hidden rows per "
            + "token per layer), all native memory %.1f MiB", mode, sequence / (ms[ms.length / 2] / 1000),
            plan.bytes() / 1048576.0, keptRows, backend.nativeBytes() / 1048576.0));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return out;
  }
}
