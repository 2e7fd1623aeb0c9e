package dev.plora.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import java.nio.FloatBuffer;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Host copies, device copies and fills on strided views. */
class TensorCopyTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void bufferRoundTripThroughAStridedView(String backendName) {
    SplittableRandom rng = new SplittableRandom(9);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        Tensor parent = scope.allocate(9, 13, dtype).fill(Float.NaN);
        Tensor view = parent.view(2, 3, 5, 7);
        float[] values = Reference.random(rng, 35, dtype);
        FloatBuffer in = FloatBuffer.allocate(40).position(5);
        in.put(values).position(5);
        view.copyFrom(in);
        assertEquals(5, in.position(), "write leaves the position");

        FloatBuffer out = FloatBuffer.allocate(38).position(3);
        view.copyTo(out);
        assertEquals(38, out.position());
        float[] back = new float[35];
        out.position(3).get(back);
        assertArrayEquals(values, back, dtype.toString());

        float[] all = parent.toFloatArray();
        int nan = 0;
        for (float v : all) {
          nan += Float.isNaN(v) ? 1 : 0;
        }
        assertEquals(9 * 13 - 35, nan, dtype + ": the write left its view");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void copyConvertsBetweenViewsOfAnyDtype(String backendName) {
    SplittableRandom rng = new SplittableRandom(10);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      for (DType from : BackendCases.floatDtypes()) {
        for (DType to : BackendCases.floatDtypes()) {
          float[] values = Reference.random(rng, 6 * 11, from);
          Tensor src = scope.allocate(8, 12, from).view(1, 1, 6, 11).copyFrom(values);
          Tensor dstParent = scope.allocate(6, 20, to).fill(Float.NaN);
          Tensor dst = dstParent.colsView(4, 11);
          backend.copy(src, dst);
          float[] got = dst.toFloatArray();
          for (int i = 0; i < values.length; i++) {
            assertEquals(to.round(values[i]), got[i], from + "->" + to + " element " + i);
          }
          for (float v : dstParent.colsView(15, 5).toFloatArray()) {
            assertTrue(Float.isNaN(v), from + "->" + to + ": copy wrote past its view");
          }
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void fillRoundsAndStaysInsideItsView(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        Tensor parent = scope.allocate(4, 6, dtype).fill(Float.NaN);
        parent.view(1, 2, 2, 3).fill(0.1f);
        float[] all = parent.toFloatArray();
        for (int i = 0; i < 4; i++) {
          for (int j = 0; j < 6; j++) {
            boolean inside = i >= 1 && i <= 2 && j >= 2 && j <= 4;
            float v = all[i * 6 + j];
            assertTrue(inside ? v == dtype.round(0.1f) : Float.isNaN(v), dtype + " [" + i + "," + j + "] = " + v);
          }
        }
      }
    }
  }
}
