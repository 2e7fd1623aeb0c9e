package dev.plora.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.testing.BackendCases;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The Java conversions (used for host copies) against the native ones (used by kernels). */
class DTypeTest {
  @Test
  void knownRoundings() {
    assertEquals((short) 0x3f80, DType.floatToBf16(1.00390625f)); // tie to even, down
    assertEquals((short) 0x3f82, DType.floatToBf16(1.01171875f)); // tie to even, up
    assertEquals((short) 0x7bff, DType.floatToF16(65504f));
    assertEquals((short) 0x7c00, DType.floatToF16(65520f)); // overflow by rounding
    assertEquals((short) 0x0001, DType.floatToF16(0x1p-24f)); // smallest subnormal
    assertEquals((short) 0x0000, DType.floatToF16(0x1p-25f)); // tie to even, to zero
    assertTrue(Float.isNaN(DType.bf16ToFloat(DType.floatToBf16(Float.NaN))));
    assertTrue(Float.isNaN(DType.f16ToFloat(DType.floatToF16(Float.NaN))));
  }

  @Test
  void everyFiniteHalfSurvivesARoundTrip() {
    for (int h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) == 0x7c00) {
        continue;
      }
      assertEquals((short) h, DType.floatToF16(DType.f16ToFloat((short) h)), "f16 " + Integer.toHexString(h));
      if ((h & 0x7f80) != 0x7f80) {
        assertEquals((short) h, DType.floatToBf16(DType.bf16ToFloat((short) h)), "bf16 " + Integer.toHexString(h));
      }
    }
  }

  /** Values written from Java and converted by the native copy kernel round identically. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void javaAndNativeRoundingAgreeBitForBit(String backendName) {
    SplittableRandom rng = new SplittableRandom(3);
    int n = 4096;
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      // wide exponent range, subnormals of f16 and overflow included
      v[i] = (float) ((rng.nextDouble() * 2 - 1) * Math.pow(2, rng.nextInt(-30, 18)));
    }
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      Tensor f32 = scope.fromArray(v, 64, 64, DType.F32);
      for (DType dtype : new DType[] {DType.BF16, DType.F16}) {
        Tensor narrow = scope.allocate(64, 64, dtype);
        backend.copy(f32, narrow); // native rounding
        float[] got = narrow.toFloatArray();
        for (int i = 0; i < n; i++) {
          assertEquals(Float.floatToIntBits(dtype.round(v[i])), Float.floatToIntBits(got[i]),
              dtype + " of " + v[i]);
        }
      }
    }
  }
}
