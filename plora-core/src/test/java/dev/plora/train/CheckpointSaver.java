package dev.plora.train;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;

/** A child process for CheckpointTest: saves 48 MiB checkpoints in a loop until it is killed. */
public final class CheckpointSaver {
  public static void main(String[] args) {
    Path dir = Path.of(args[0]);
    try (Backend backend = new CpuBackend(); Tensor value = backend.allocate(4096, 1024, DType.F32).fill(0.5f);
        Tensor grad = backend.allocate(4096, 1024, DType.F32).fill(0f)) {
      Parameter p = new Parameter("big", value, grad, null, Parameter.Role.WEIGHT);
      Trainer<Integer> trainer = Trainer.<Integer>builder(backend).lossFunction(b -> 0.0).batches((s, m) -> 0)
          .parameters(List.of(p)).steps(1).build();
      for (long i = 1; ; i++) {
        value.fill(i);
        trainer.saveCheckpoint(Checkpoints.fileFor(dir, i));
        System.out.println("saved " + i);
        System.out.flush();
      }
    }
  }
}
