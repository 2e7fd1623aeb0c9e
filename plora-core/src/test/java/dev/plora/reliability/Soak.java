package dev.plora.reliability;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.model.Mlp;
import dev.plora.optim.LrSchedule;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The soak behind docs/reliability.md: 10^6 tensor allocate/close cycles, then 10^4 PLoRA
 * training steps, printing the backend's native bytes and the process RSS as it goes. Run with
 * {@code java -cp target/test-classes:target/classes:$(cat target/classpath.txt)
 * dev.plora.reliability.Soak [cycles] [steps]}.
 */
public final class Soak {
  public static void main(String[] args) throws IOException {
    long cycles = args.length > 0 ? Long.parseLong(args[0]) : 1_000_000;
    long steps = args.length > 1 ? Long.parseLong(args[1]) : 10_000;
    try (Backend backend = Backends.create()) {
      System.out.printf(Locale.ROOT, "soak on %s: %d allocate/close cycles, then %d training steps%n", backend.name(),
          cycles, steps);
      System.out.printf(Locale.ROOT, "%-10s %12s %14s %10s%n", "phase", "count", "native_bytes", "rss_MiB");
      report("start", 0, backend);
      for (long i = 1; i <= cycles; i++) {
        Tensor t = backend.allocate(1 + (int) (i % 61), 1 + (int) (i % 37), DType.values()[(int) (i % 3)]);
        if (i % 3 == 0) {
          t.fill(1f);
        }
        t.close();
        if (i % (cycles / 10) == 0) {
          report("alloc", i, backend);
        }
      }
      train(backend, steps);
    }
  }

  private static void train(Backend backend, long steps) throws IOException {
    try (TensorScope s = new TensorScope(backend)) {
      LoraConfig config = LoraConfig.builder().r(8).alpha(16).dropout(0.1f).build();
      Tensor w1 = s.allocate(128, 64, DType.F32), w2 = s.allocate(32, 128, DType.F32);
      backend.fillUniform(w1, -0.1f, 0.1f, 1, 1);
      backend.fillUniform(w2, -0.1f, 0.1f, 1, 2);
      Tensor x = s.allocate(32, 64, DType.F32), y = s.allocate(32, 32, DType.F32), dout = s.allocate(32, 32, DType.F32);
      backend.fillUniform(x, -1f, 1f, 1, 3);
      backend.fillUniform(y, -1f, 1f, 1, 4);
      try (Mlp model = new Mlp(List.of(LoraLinear.create(w1, null, config, 0), LoraLinear.create(w2, null, config, 1)))) {
        long[] done = {0};
        Trainer<Integer> trainer = Trainer.<Integer>builder(backend).lossFunction(b -> {
          double loss = backend.mse(model.forward(x), y, dout);
          model.backward(dout);
          return loss;
        }).batches((step, micro) -> 0).adapters(Lora.adapters(model)).steps(steps).schedule(LrSchedule.constant(1e-3))
            .periodic(PeriodicLoraConfig.momentum(1, 0.1f)).listener(new dev.plora.train.TrainListener() {
              @Override
              public void onStep(StepEvent e) {
                done[0]++;
                if (done[0] % (steps / 10) == 0) {
                  report("train", done[0], backend);
                }
              }
            }).build();
        trainer.run();
        trainer.close();
      }
    }
  }

  private static void report(String phase, long count, Backend backend) {
    System.out.printf(Locale.ROOT, "%-10s %12d %14d %10.1f%n", phase, count, backend.nativeBytes(), rssMiB());
  }

  private static double rssMiB() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        }
      }
    } catch (IOException | NumberFormatException e) {
      return Double.NaN;
    }
    return Double.NaN;
  }
}
