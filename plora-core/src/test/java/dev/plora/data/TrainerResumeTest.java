package dev.plora.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.optim.LrSchedule;
import dev.plora.train.Checkpoints;
import dev.plora.train.TrainListener;
import dev.plora.train.Trainer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A training run stopped at a checkpoint and resumed reads the batches, and gets the losses, of one that ran through. */
class TrainerResumeTest {
  private static final int STEPS = 10, STOP = 5, ACCUMULATION = 2, BUDGET = 24;

  /** What a run saw: each micro-batch's examples, and each step's loss. */
  record Run(List<String> batches, double[] losses) {}

  private static List<Example> examples() {
    SplittableRandom rng = new SplittableRandom(21);
    List<Example> out = new ArrayList<>();
    for (int i = 0; i < 11; i++) {
      int[] ids = rng.ints(2 + rng.nextInt(10), 0, TinyLlama.VOCAB).toArray();
      int[] labels = ids.clone();
      labels[0] = Example.IGNORE;
      out.add(new Example(ids, labels));
    }
    return out;
  }

  private static Run train(int steps, Path checkpoints, Path resumeFrom) throws Exception {
    Batches batches = Batches.packed(examples(), BUDGET).seed(17).build();
    List<String> seen = new ArrayList<>();
    double[] losses = new double[steps];
    Arrays.fill(losses, Double.NaN);
    try (Backend backend = new CpuBackend(); LlamaForCausalLM model = TinyLlama.build(backend, 5)) {
      var adapters = Lora.inject(model, LoraConfig.builder().r(2).alpha(4).seed(3)
          .targetModules("q_proj", "v_proj").build());
      Trainer.Builder<Batch> builder = Trainer.<Batch>builder(backend).adapters(adapters)
          .batches(batches.source(ACCUMULATION)).gradientAccumulation(ACCUMULATION)
          .lossFunction(b -> {
            seen.add(Arrays.toString(b.examples()));
            try (TokenBatch t = b.pack(backend)) {
              return model.forward(t, true).loss();
            }
          })
          .steps(steps).schedule(LrSchedule.constant(1e-2))
          .listener(new TrainListener() {
            @Override
            public void onStep(StepEvent e) {
              losses[(int) e.step()] = e.loss();
            }
          });
      if (checkpoints != null) {
        builder.checkpoints(checkpoints, STOP, 1);
      }
      try (Trainer<Batch> trainer = builder.build()) {
        if (resumeFrom != null) {
          trainer.loadCheckpoint(resumeFrom);
        }
        trainer.run();
      }
    }
    return new Run(seen, losses);
  }

  @Test
  void aResumedRunReplaysTheUninterruptedRunsData(@TempDir Path dir) throws Exception {
    Batches batches = Batches.packed(examples(), BUDGET).seed(17).build();
    assertTrue(batches.batchesIn(2) < STEPS * ACCUMULATION, "the run crosses epochs");
    Run straight = train(STEPS, null, null);
    Run first = train(STOP, dir, null);
    Run resumed = train(STEPS, null, Checkpoints.latest(dir).orElseThrow());
    Batches.Cursor cursor = batches.cursor(new Batches.Position(0, 0));
    for (String served : straight.batches()) { // micro-batch k of the run is batch k, epochs one after another
      assertEquals(Arrays.toString(cursor.next().examples()), served);
    }
    int read = STOP * ACCUMULATION;
    assertEquals(straight.batches().subList(0, read), first.batches());
    assertEquals(straight.batches().subList(read, STEPS * ACCUMULATION), resumed.batches());
    assertArrayEquals(Arrays.copyOfRange(straight.losses(), STOP, STEPS), Arrays.copyOfRange(resumed.losses(), STOP,
        STEPS), "the losses of the steps after the checkpoint, bit for bit");
  }
}
