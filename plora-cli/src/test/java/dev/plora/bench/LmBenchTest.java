package dev.plora.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.tensor.DType;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The model benchmark's steps run and count their FLOPs as documented (a tiny shape; no timing asserted). */
class LmBenchTest {
  @Test
  void runsEveryStepAndCountsItsFlops() {
    LlamaConfig tiny = new LlamaConfig(LlamaConfig.Architecture.LLAMA, 32, 48, 2, 4, 2, 8, 50, 1e-5, 10000, null, false,
        false, false, 64, null);
    int t = 16;
    List<String> notes = new ArrayList<>();
    try (Backend backend = Backends.create("cpu")) {
      List<BenchResult> results = new LmBench(backend, DType.F32, new Timing(0, 2, 5)).run(tiny, t, notes::add);
      assertEquals(List.of("lm_lora_step", "lm_lora_step_checkpointed", "lm_frozen_step", "lm_full_step",
          "lm_inference"), results.stream().map(BenchResult::name).toList());
      long projections = 2L * (32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 48), head = 50L * 32;
      long attention = 2L * 2 * t * t * 8 * 4, forward = 2L * t * (projections + head) + attention;
      long dx = 2L * t * (projections + head) + (long) (2.5 * attention);
      assertEquals(forward, results.get(4).flops(), "inference: forward only");
      assertEquals(forward + dx, results.get(2).flops(), "frozen: forward and dX");
      assertEquals(forward + dx + 2L * t * (projections + head), results.get(3).flops(), "full: and the dW GEMMs");
      assertEquals(results.get(0).flops() + 2L * t * projections + attention, results.get(1).flops(),
          "checkpointed: and the layers' forward again");
      for (BenchResult r : results) {
        assertTrue(r.medianMs() > 0 && r.runs() == 2, r.toString());
      }
      assertEquals(5, notes.size());
      assertTrue(notes.get(0).matches("lm_lora_step: [0-9.]+ tokens/s, activations [0-9.]+ MiB \\(kept [0-9.]+ hidden "
          + "rows per token per layer\\), all native memory [0-9.]+ MiB"), notes.get(0));
      assertEquals(0, backend.nativeBytes(), "every model and batch closed");
    }
  }
}
