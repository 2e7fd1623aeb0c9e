package dev.plora.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.model.Layer;
import dev.plora.model.Mlp;
import dev.plora.optim.LrSchedule;
import dev.plora.optim.Parameter;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The training loop on a small teacher–student regression task. */
class TrainerTest {
  private static final int IN = 16, HIDDEN = 32, OUT = 8, BATCH = 24, BATCHES = 4;

  record Batch(Tensor x, Tensor target) {}

  /** A student MLP of LoRA layers over a random backbone, and batches of a teacher's outputs. */
  static final class Task implements AutoCloseable {
    final TensorScope scope;
    final Mlp student;
    final List<Batch> batches = new ArrayList<>();
    final Backend backend;
    Tensor dout;

    Task(Backend backend, int r, float dropout) {
      this.backend = backend;
      this.scope = new TensorScope(backend);
      SplittableRandom rng = new SplittableRandom(42);
      LoraConfig config = LoraConfig.builder().r(r).alpha(2f * r).dropout(dropout).seed(7).build();
      Tensor w1 = scope.fromArray(scaled(rng, HIDDEN * IN, 0.5f), HIDDEN, IN, DType.F32);
      Tensor w2 = scope.fromArray(scaled(rng, OUT * HIDDEN, 0.5f), OUT, HIDDEN, DType.F32);
      student = new Mlp(List.of(LoraLinear.create(w1, null, config, 0), LoraLinear.create(w2, null, config, 1)));
      float[] t1 = scaled(rng, HIDDEN * IN, 0.5f), t2 = scaled(rng, OUT * HIDDEN, 0.5f);
      for (int b = 0; b < BATCHES; b++) {
        float[] x = scaled(rng, BATCH * IN, 1f);
        float[] target = teacher(x, t1, t2);
        batches.add(new Batch(scope.fromArray(x, BATCH, IN, DType.F32), scope.fromArray(target, BATCH, OUT, DType.F32)));
      }
      dout = scope.allocate(BATCH, OUT, DType.F32);
    }

    double forwardBackward(Batch batch) {
      Tensor y = student.forward(batch.x());
      double loss = backend.mse(y, batch.target(), dout);
      student.backward(dout);
      return loss;
    }

    Trainer.Builder<Batch> trainer(long steps) {
      return Trainer.<Batch>builder(backend).lossFunction(this::forwardBackward)
          .batches((step, micro) -> batches.get((int) (step % BATCHES))).adapters(Lora.adapters(student))
          .steps(steps).schedule(LrSchedule.constant(1e-2));
    }

    @Override
    public void close() {
      student.close();
      scope.close();
    }
  }

  static float[] scaled(SplittableRandom rng, int n, float scale) {
    float[] v = Reference.random(rng, n, DType.F32);
    for (int i = 0; i < n; i++) {
      v[i] *= scale;
    }
    return v;
  }

  static float[] teacher(float[] x, float[] t1, float[] t2) {
    float[] out = new float[BATCH * OUT];
    for (int i = 0; i < BATCH; i++) {
      double[] h = new double[HIDDEN];
      for (int o = 0; o < HIDDEN; o++) {
        double acc = 0;
        for (int t = 0; t < IN; t++) {
          acc += x[i * IN + t] * t1[o * IN + t];
        }
        h[o] = Math.tanh(acc);
      }
      for (int o = 0; o < OUT; o++) {
        double acc = 0;
        for (int t = 0; t < HIDDEN; t++) {
          acc += h[t] * t2[o * HIDDEN + t];
        }
        out[i * OUT + o] = (float) acc;
      }
    }
    return out;
  }

  /** Losses of a run, recorded by a listener. */
  static final class Recorder implements TrainListener {
    final List<Double> losses = new ArrayList<>();
    int unloads;

    @Override
    public void onStep(StepEvent e) {
      losses.add(e.loss());
    }

    @Override
    public void onUnload(UnloadEvent e) {
      unloads++;
    }

    double[] array() {
      return losses.stream().mapToDouble(Double::doubleValue).toArray();
    }
  }

  private static double[] run(PeriodicLoraConfig periodic) {
    try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0.1f)) {
      Recorder recorder = new Recorder();
      try (Trainer<Batch> trainer = task.trainer(200).periodic(periodic).listener(recorder).build()) {
        trainer.run();
      }
      return recorder.array();
    }
  }

  @Test
  void theSameSeedGivesABitIdenticalTrajectoryOnCpu() {
    double[] first = run(PeriodicLoraConfig.momentum(10, 0.5f));
    double[] second = run(PeriodicLoraConfig.momentum(10, 0.5f));
    assertEquals(200, first.length);
    assertArrayEquals(first, second, "200 losses, bit for bit");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void trainingLowersTheLossAndUnloadsOnSchedule(String backendName) {
    try (Backend backend = BackendCases.open(backendName); Task task = new Task(backend, 4, 0f)) {
      Recorder recorder = new Recorder();
      try (Trainer<Batch> trainer = task.trainer(120).periodic(PeriodicLoraConfig.full(25)).listener(recorder).build()) {
        Trainer.Result result = trainer.run();
        assertEquals(120, result.steps());
        assertEquals(4, result.unloads());
      }
      assertEquals(4, recorder.unloads);
      double[] losses = recorder.array();
      assertTrue(losses[losses.length - 1] < 0.5 * losses[0], "loss " + losses[0] + " -> " + losses[losses.length - 1]);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void ploraHoldsExactlyLorasTrainableState(String backendName) {
    try (Backend backend = BackendCases.open(backendName); Task lora = new Task(backend, 4, 0f);
        Task plora = new Task(backend, 4, 0f)) {
      try (Trainer<Batch> a = lora.trainer(1).build();
          Trainer<Batch> b = plora.trainer(1).periodic(PeriodicLoraConfig.momentum(1, 0.1f)).build()) {
        long expected = 0;
        for (LoraLinear l : lora.student.loraLayers()) {
          expected += 2 * l.adapter().trainableBytes(); // values + gradients, then the two Adam moments
        }
        assertEquals(expected, a.trainableBytes());
        assertEquals(a.trainableBytes(), b.trainableBytes());
        plora.forwardBackward(plora.batches.get(0)); // the model's activation buffers now exist
        long before = backend.nativeBytes();
        b.run();
        assertEquals(before, backend.nativeBytes(), "unloading allocates nothing that stays");
      }
    }
  }

  /**
   * After the first step, a step — forward, loss, backward, clipping norm, AdamW, unloading (by
   * momentum every step; fully, with ReLoRA's pruning, every second) — allocates nothing, also
   * when the model recomputes its activations.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void aStepAfterTheFirstAllocatesNothing(String backendName) {
    for (PeriodicLoraConfig periodic : new PeriodicLoraConfig[] {PeriodicLoraConfig.momentum(1, 0.1f),
        PeriodicLoraConfig.relora(2, 0.5)}) {
      for (boolean recompute : new boolean[] {false, true}) {
        try (Backend backend = BackendCases.open(backendName); Task task = new Task(backend, 4, 0.1f)) {
          task.student.recompute(recompute);
          List<Long> allocations = new ArrayList<>();
          TrainListener counter = new TrainListener() {
            @Override
            public void onStep(StepEvent e) {
              allocations.add(backend.allocations());
            }
          };
          try (Trainer<Batch> trainer = task.trainer(6).periodic(periodic).listener(counter).build()) {
            Trainer.Result result = trainer.run();
            assertEquals(6, result.steps());
          }
          assertEquals(6, allocations.size());
          assertTrue(allocations.get(0) > 0);
          assertEquals(List.of(allocations.get(0), allocations.get(0), allocations.get(0), allocations.get(0),
              allocations.get(0), allocations.get(0)), allocations, periodic + ", recompute " + recompute
              + ": allocations counted after each step");
        }
      }
    }
  }

  @Test
  void aNonFiniteLossStopsTheRunWithTheLastGoodWeights() {
    try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0f)) {
      List<float[]> snapshots = new ArrayList<>();
      TrainListener snapshot = new TrainListener() {
        @Override
        public void onStep(StepEvent e) {
          snapshots.clear();
          for (Layer l : task.student.layers()) {
            for (Parameter p : l.parameters()) {
              snapshots.add(p.value().toFloatArray());
            }
          }
        }
      };
      long[] calls = {0};
      Trainer<Batch> trainer = Trainer.<Batch>builder(backend)
          .lossFunction(b -> calls[0]++ == 5 ? Double.NaN : task.forwardBackward(b))
          .batches((step, micro) -> task.batches.get((int) (step % BATCHES)))
          .adapters(Lora.adapters(task.student)).steps(20).listener(snapshot).build();
      TrainingDivergedException e = assertThrows(TrainingDivergedException.class, trainer::run);
      assertEquals(5, e.step());
      assertTrue(e.getMessage().contains("loss is NaN") && e.getMessage().contains("last good step (4)"),
          e.getMessage());
      int i = 0;
      for (Layer l : task.student.layers()) {
        for (Parameter p : l.parameters()) {
          assertArrayEquals(snapshots.get(i++), p.value().toFloatArray(), "weights as of step 4");
        }
      }
      trainer.close();
    }
  }

  @Test
  void aNonFiniteGradientStopsTheRun() {
    try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0f)) {
      Trainer<Batch> trainer = Trainer.<Batch>builder(backend).lossFunction(b -> {
        double loss = task.forwardBackward(b);
        task.student.loraLayers().get(0).adapter().gradB().fill(Float.POSITIVE_INFINITY);
        return loss;
      }).batches((step, micro) -> task.batches.get(0)).adapters(Lora.adapters(task.student)).steps(3).build();
      TrainingDivergedException e = assertThrows(TrainingDivergedException.class, trainer::run);
      assertEquals(0, e.step());
      assertTrue(e.getMessage().contains("gradient norm"), e.getMessage());
      trainer.close();
    }
  }

  /** Two micro-batches of half the rows give the gradient of the whole batch (MSE means average). */
  @Test
  void gradientAccumulationEqualsTheWholeBatch() {
    float[][] results = new float[2][];
    for (int accumulate = 1; accumulate <= 2; accumulate++) {
      try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0f)) {
        Batch whole = task.batches.get(0);
        List<Batch> halves = List.of(
            new Batch(whole.x().rowsView(0, BATCH / 2), whole.target().rowsView(0, BATCH / 2)),
            new Batch(whole.x().rowsView(BATCH / 2, BATCH / 2), whole.target().rowsView(BATCH / 2, BATCH / 2)));
        Tensor halfGrad = task.scope.allocate(BATCH / 2, OUT, DType.F32);
        int acc = accumulate;
        Trainer<Batch> trainer = Trainer.<Batch>builder(backend).lossFunction(b -> {
          Tensor y = task.student.forward(b.x());
          Tensor d = b.x().rows() == BATCH ? task.dout : halfGrad;
          double loss = backend.mse(y, b.target(), d);
          task.student.backward(d);
          return loss;
        }).batches((step, micro) -> acc == 1 ? whole : halves.get(micro)).gradientAccumulation(accumulate)
            .adapters(Lora.adapters(task.student)).steps(5).maxGradNorm(0).schedule(LrSchedule.constant(1e-2)).build();
        trainer.run();
        results[accumulate - 1] = task.student.loraLayers().get(1).adapter().masterB().toFloatArray();
        trainer.close();
      }
    }
    double[] ref = new double[results[0].length];
    for (int i = 0; i < ref.length; i++) {
      ref[i] = results[0][i];
    }
    assertTrue(Reference.relativeError(results[1], ref) <= 1e-5, "accumulated vs whole-batch B");
  }

  @Test
  void badSettingsAreReportedTogether() {
    try (Backend backend = new CpuBackend()) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> Trainer.<Batch>builder(backend).steps(0).gradientAccumulation(0).periodic(PeriodicLoraConfig.full(5))
              .build());
      for (String part : new String[] {"lossFunction", "batches", "steps", "gradientAccumulation", "periodic"}) {
        assertTrue(e.getMessage().contains(part), e.getMessage());
      }
    }
  }
}
