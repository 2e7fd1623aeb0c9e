package dev.plora.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import java.nio.FloatBuffer;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tensors larger than the staging buffer travel in pieces: blocks of rows, or parts of one row. */
class HostStagingTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void piecesReassembleEveryShapeAndDtype(String backendName) {
    SplittableRandom rng = new SplittableRandom(12);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      for (int stagingBytes : new int[] {4, 36, 52, 1 << 12}) { // below a row, a few rows, odd sizes, all
        HostStaging staging = new HostStaging(stagingBytes);
        for (DType dtype : BackendCases.floatDtypes()) {
          Tensor parent = scope.allocate(11, 29, dtype).fill(Float.NaN);
          Tensor view = parent.view(1, 3, 9, 23); // strided: ld 29
          float[] values = Reference.random(rng, 9 * 23, dtype);
          staging.write(view, FloatBuffer.wrap(values), backend::upload);
          assertArrayEquals(values, view.toFloatArray(), stagingBytes + " bytes, " + dtype + ": write");

          FloatBuffer back = FloatBuffer.allocate(9 * 23 + 2).position(2);
          staging.read(view, back, backend::download);
          assertEquals(9 * 23 + 2, back.position(), "read advances by the element count");
          float[] got = new float[9 * 23];
          back.position(2).get(got);
          assertArrayEquals(values, got, stagingBytes + " bytes, " + dtype + ": read");

          int untouched = 0;
          for (float v : parent.toFloatArray()) {
            untouched += Float.isNaN(v) ? 1 : 0;
          }
          assertEquals(11 * 29 - 9 * 23, untouched, stagingBytes + " bytes, " + dtype + ": outside the view");
        }
      }
    }
  }
}
