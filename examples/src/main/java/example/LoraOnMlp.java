package example;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.io.PeftAdapter;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraAdapter;
import dev.plora.lora.LoraConfig;
import dev.plora.model.Linear;
import dev.plora.model.Mlp;
import dev.plora.optim.LrSchedule;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.train.Trainer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * LoRA on a frozen MLP, the way a pipeline uses plora-core: build the model, inject adapters into
 * the modules named by {@code targetModules}, train them with the {@link Trainer}, and save them as a
 * PEFT adapter.
 *
 * <p>The task: a frozen random MLP of three linear layers must learn to match a "teacher" whose
 * first two layers differ from it by a low-rank update, from 16 batches of random inputs.
 */
public final class LoraOnMlp {
  static final int IN = 64, HIDDEN = 128, OUT = 32, BATCH = 32, BATCHES = 16;

  /** Validation loss before and after training, and where the adapter went. */
  public record Result(double lossBefore, double lossAfter, List<String> adaptedModules, Path adapterDir) {}

  record Batch(Tensor x, Tensor target) {}

  private LoraOnMlp() {}

  public static void main(String[] args) throws IOException {
    Path out = Path.of(args.length > 0 ? args[0] : "lora-on-mlp-adapter");
    Result result = run(out, 300);
    System.out.printf("adapted %s; validation loss %.5f -> %.5f; adapter in %s%n", result.adaptedModules(),
        result.lossBefore(), result.lossAfter(), result.adapterDir());
  }

  public static Result run(Path adapterDir, int steps) throws IOException {
    SplittableRandom rng = new SplittableRandom(1);
    float[][] base = {normal(rng, HIDDEN * IN, 1 / Math.sqrt(IN)), normal(rng, HIDDEN * HIDDEN, 1 / Math.sqrt(HIDDEN)),
        normal(rng, OUT * HIDDEN, 1 / Math.sqrt(HIDDEN))};
    float[][] teacher = {plusLowRank(rng, base[0], HIDDEN, IN, 4), plusLowRank(rng, base[1], HIDDEN, HIDDEN, 4), base[2]};

    try (Backend backend = Backends.create(); TensorScope scope = new TensorScope(backend);
        Mlp model = mlp(scope, base); Mlp teacherModel = mlp(scope, teacher)) {
      List<Batch> train = batches(scope, teacherModel, rng, BATCHES);
      Batch validation = batches(scope, teacherModel, rng, 1).get(0);
      Tensor dout = scope.allocate(BATCH, OUT, DType.F32);

      // PEFT's target_modules: the hidden layers by name; the output head stays frozen.
      Map<String, LoraAdapter> adapters = Lora.inject(model,
          LoraConfig.builder().r(8).alpha(16).seed(7).targetModules("layers.0", "layers.1").build());

      double before = loss(backend, model, validation, dout);
      try (Trainer<Batch> trainer = Trainer.<Batch>builder(backend)
          .lossFunction(batch -> {
            double loss = backend.mse(model.forward(batch.x()), batch.target(), dout);
            model.backward(dout);
            return loss;
          })
          .batches((step, micro) -> train.get((int) (step % BATCHES)))
          .adapters(adapters)
          .steps(steps)
          .schedule(LrSchedule.warmupCosine(1e-2, steps / 10, steps, 0))
          .build()) {
        trainer.run();
      }
      double after = loss(backend, model, validation, dout);
      PeftAdapter.save(adapterDir, adapters, true);
      return new Result(before, after, List.copyOf(adapters.keySet()), adapterDir);
    }
  }

  private static Mlp mlp(TensorScope scope, float[][] weights) {
    return new Mlp(List.of(
        new Linear(scope.fromArray(weights[0], HIDDEN, IN, DType.F32), null, false),
        new Linear(scope.fromArray(weights[1], HIDDEN, HIDDEN, DType.F32), null, false),
        new Linear(scope.fromArray(weights[2], OUT, HIDDEN, DType.F32), null, false)));
  }

  /** Batches of random inputs with the teacher's outputs as targets. */
  private static List<Batch> batches(TensorScope scope, Mlp teacher, SplittableRandom rng, int count) {
    List<Batch> batches = new ArrayList<>();
    for (int b = 0; b < count; b++) {
      Tensor x = scope.fromArray(normal(rng, BATCH * IN, 1), BATCH, IN, DType.F32);
      Tensor target = scope.allocate(BATCH, OUT, DType.F32);
      target.copyFrom(teacher.forward(x).toFloatArray());
      batches.add(new Batch(x, target));
    }
    return batches;
  }

  private static double loss(Backend backend, Mlp model, Batch batch, Tensor dout) {
    model.train(false);
    double loss = backend.mse(model.forward(batch.x()), batch.target(), dout);
    model.train(true);
    return loss;
  }

  private static float[] normal(SplittableRandom rng, int n, double std) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      double u1 = 1 - rng.nextDouble(), u2 = rng.nextDouble();
      v[i] = (float) (std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
    return v;
  }

  /** w + U·Vᵀ with U [rows, rank], V [cols, rank] random, the update about half w's scale. */
  private static float[] plusLowRank(SplittableRandom rng, float[] w, int rows, int cols, int rank) {
    float[] u = normal(rng, rows * rank, 1), v = normal(rng, cols * rank, 0.5 / Math.sqrt(cols * rank));
    float[] out = w.clone();
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        double s = 0;
        for (int k = 0; k < rank; k++) {
          s += u[i * rank + k] * v[j * rank + k];
        }
        out[i * cols + j] += (float) s;
      }
    }
    return out;
  }
}
