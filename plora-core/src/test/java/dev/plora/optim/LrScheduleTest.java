package dev.plora.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LrScheduleTest {
  @Test
  void constant() {
    assertEquals(3e-4, LrSchedule.constant(3e-4).lr(0));
    assertEquals(3e-4, LrSchedule.constant(3e-4).lr(1_000_000));
  }

  @Test
  void warmupCosineBoundaries() {
    LrSchedule s = LrSchedule.warmupCosine(1.0, 10, 110, 0.1);
    assertEquals(0.1, s.lr(0), 1e-12);         // first warm-up step
    assertEquals(0.5, s.lr(4), 1e-12);
    assertEquals(1.0, s.lr(9), 1e-12);         // last warm-up step reaches the peak
    assertEquals(1.0, s.lr(10), 1e-12);        // cosine starts at the peak
    assertEquals(0.55, s.lr(60), 1e-12);       // half-way: (peak + min) / 2
    assertEquals(0.1, s.lr(110), 1e-12);       // the end: min
    assertEquals(0.1, s.lr(500), 1e-12);       // and it stays there
  }

  @Test
  void warmupLinearBoundaries() {
    LrSchedule s = LrSchedule.warmupLinear(1.0, 10, 110);
    assertEquals(0.1, s.lr(0), 1e-12);
    assertEquals(1.0, s.lr(9), 1e-12);
    assertEquals(1.0, s.lr(10), 1e-12);        // the decay starts at the peak
    assertEquals(0.5, s.lr(60), 1e-12);
    assertEquals(0.0, s.lr(110), 1e-12);
    assertEquals(0.0, s.lr(500), 1e-12);
    assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupLinear(1.0, 11, 10));
  }

  @Test
  void jaggedCosineRestartsEachStage() {
    LrSchedule envelope = LrSchedule.warmupCosine(1.0, 5, 100, 0.0);
    LrSchedule s = LrSchedule.jaggedCosine(1.0, 5, 100, 0.0, 20, 4);
    for (long step : new long[] {0, 4, 10, 19}) {
      assertEquals(envelope.lr(step), s.lr(step), 1e-12, "first stage = envelope at " + step);
    }
    assertEquals(envelope.lr(20) * 0.25, s.lr(20), 1e-12); // restart: first step of stage 2
    assertEquals(envelope.lr(23), s.lr(23), 1e-12);        // re-warm-up done after 4 steps
    assertEquals(envelope.lr(24), s.lr(24), 1e-12);
    assertEquals(envelope.lr(41) * 0.5, s.lr(41), 1e-12);  // stage 3, second step
  }

  @Test
  void badArgumentsAreNamed() {
    assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(-1));
    assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupCosine(1, 20, 10, 0));
    assertThrows(IllegalArgumentException.class, () -> LrSchedule.jaggedCosine(1, 0, 10, 0, 5, 6));
  }
}
