package dev.plora.testing;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.backend.cuda.CudaSupport;
import dev.plora.tensor.DType;
import java.util.stream.Stream;

/**
 * The backends a parity suite runs on. Every test is parameterised over all names; a backend
 * that cannot run here is skipped with the probe's reason, which shows in the test report. With
 * {@code -Dplora.test.requireCuda=true} (the GPU check sets it) an unusable CUDA backend fails
 * the test instead: on a GPU machine a skip would hide exactly what the run is for.
 */
public final class BackendCases {
  private BackendCases() {}

  /** For {@code @MethodSource("dev.plora.testing.BackendCases#names")}. */
  /** The dtypes kernels compute on (every dtype but I32). */
  public static DType[] floatDtypes() {
    return Stream.of(DType.values()).filter(DType::isFloat).toArray(DType[]::new);
  }

  public static Stream<String> names() {
    return Stream.of("cpu", "cuda");
  }

  /** Opens the backend, or skips the test with the reason it is unusable. */
  public static Backend open(String name) {
    if (name.equals("cuda")) {
      if (Boolean.getBoolean("plora.test.requireCuda") && !CudaSupport.isUsable()) {
        fail("CUDA backend required (plora.test.requireCuda) but unusable: " + CudaSupport.reason());
      }
      assumeTrue(CudaSupport.isUsable(), () -> "CUDA backend skipped: " + CudaSupport.reason());
    }
    return Backends.create(name);
  }
}
