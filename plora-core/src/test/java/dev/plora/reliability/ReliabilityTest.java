package dev.plora.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.BackendException;
import dev.plora.io.Safetensors;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Leaks, memory exhaustion and use from several threads. */
class ReliabilityTest {
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void leakedTensorsAreReclaimedAndReportedWithTheirAllocationSite(String backendName) throws Exception {
    List<String> reports = Collections.synchronizedList(new ArrayList<>());
    String before = System.getProperty("plora.trackLeaks");
    System.setProperty("plora.trackLeaks", "true");
    Backend.setLeakReporter(reports::add);
    try (Backend backend = BackendCases.open(backendName)) {
      long leaksBefore = Backend.leakedTensors();
      allocateAndForget(backend, 20);
      long deadline = System.nanoTime() + 20_000_000_000L;
      while (backend.nativeBytes() != 0 && System.nanoTime() < deadline) {
        System.gc();
        Thread.sleep(20);
      }
      assertEquals(0, backend.nativeBytes(), "the garbage collector reclaimed the leaked memory");
      assertEquals(20, Backend.leakedTensors() - leaksBefore);
      assertEquals(20, reports.size());
      assertTrue(reports.get(0).contains("without close()") && reports.get(0).contains("allocateAndForget"),
          reports.get(0));
    } finally {
      Backend.setLeakReporter(null);
      if (before == null) {
        System.clearProperty("plora.trackLeaks");
      } else {
        System.setProperty("plora.trackLeaks", before);
      }
    }
  }

  private static void allocateAndForget(Backend backend, int n) {
    for (int i = 0; i < n; i++) {
      backend.allocate(64, 64, DType.F32).fill(1f);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void anAllocationBeyondMemoryIsAClearException(String backendName) {
    try (Backend backend = BackendCases.open(backendName)) {
      BackendException e = assertThrows(BackendException.class,
          () -> backend.allocate(1 << 30, 1 << 20, DType.F32)); // 4 PiB
      assertTrue(e.getMessage().contains("cannot allocate") && e.getMessage().contains("4503599627370496"),
          e.getMessage());
      assertEquals(0, backend.nativeBytes());
      try (Tensor t = backend.allocate(2, 2, DType.F32)) {
        assertEquals(2, t.rows(), "the backend still works");
      }
    }
  }

  /**
   * A full disk in the middle of a write leaves the previous file intact and no temporary behind.
   * Needs a size-limited folder: a 1 MiB tmpfs, which needs root; skipped with the reason otherwise.
   */
  @Test
  void aFullDiskLeavesThePreviousFileIntact(@TempDir Path tmp) throws Exception {
    Path small = tmp.resolve("small");
    Files.createDirectories(small);
    Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small.toString())
        .redirectErrorStream(true).start();
    String why = new String(mount.getInputStream().readAllBytes()).strip();
    Assumptions.assumeTrue(mount.waitFor() == 0,
        "full-disk test skipped: cannot mount a 1 MiB tmpfs here (" + why + ")");
    try {
      Path file = small.resolve("weights.safetensors");
      Safetensors.writeFloats(file, Map.of("w", new float[64 * 1024]),
          Map.of("w", new long[] {64, 1024}), Safetensors.Dtype.F32, Map.of(), false);
      byte[] before = Files.readAllBytes(file);
      IOException e = assertThrows(IOException.class, () ->
          Safetensors.writeFloats(file, Map.of("w", new float[512 * 1024]),
              Map.of("w", new long[] {512, 1024}), Safetensors.Dtype.F32, Map.of(),
              true));
      assertTrue(e.getMessage() != null && e.getMessage().contains("space"), e.toString());
      assertTrue(Arrays.equals(before, Files.readAllBytes(file)), "the old file is intact");
      try (var files = Files.list(small)) {
        assertEquals(List.of(file), files.toList(), "no temporary file left behind");
      }
    } finally {
      new ProcessBuilder("umount", small.toString()).start().waitFor();
    }
  }

  /** Two threads share a backend: every result is right (one operation runs at a time). */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void twoThreadsOnOneBackendGetCorrectResults(String backendName) throws Exception {
    SplittableRandom rng = new SplittableRandom(3);
    float[] a = Reference.random(rng, 64 * 48, DType.F32), b = Reference.random(rng, 40 * 48, DType.F32);
    double[] expected = Reference.gemm(false, a, 48, true, b, 48, 1, 0, null, 64, 40, 48);
    try (Backend backend = BackendCases.open(backendName)) {
      AtomicReference<Throwable> failure = new AtomicReference<>();
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < 2; t++) {
        threads.add(new Thread(() -> {
          try (Tensor at = backend.fromArray(a, 64, 48, DType.F32); Tensor bt = backend.fromArray(b, 40, 48, DType.F32);
              Tensor ct = backend.allocate(64, 40, DType.F32)) {
            for (int i = 0; i < 200; i++) {
              ct.fill(Float.NaN);
              backend.gemm(false, at, true, bt, 1f, 0f, ct);
              if (Reference.relativeError(ct.toFloatArray(), expected) > 1e-5) {
                throw new AssertionError("wrong result in iteration " + i);
              }
            }
          } catch (Throwable e) {
            failure.compareAndSet(null, e);
          }
        }));
      }
      threads.forEach(Thread::start);
      for (Thread t : threads) {
        t.join();
      }
      if (failure.get() != null) {
        throw new AssertionError(failure.get());
      }
    }
  }

  /** A tensor closed by one thread while another keeps using it: the user gets an exception, never a crash. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void closingATensorInUseFromAnotherThreadThrowsInsteadOfCorrupting(String backendName) throws Exception {
    try (Backend backend = BackendCases.open(backendName); Tensor b = backend.allocate(256, 256, DType.F32).fill(1f);
        Tensor c = backend.allocate(256, 256, DType.F32)) {
      for (int round = 0; round < 20; round++) {
        Tensor a = backend.allocate(256, 256, DType.F32).fill(1f);
        c.fill(Float.NaN);
        AtomicReference<Throwable> seen = new AtomicReference<>();
        Thread user = new Thread(() -> {
          try {
            for (int i = 0; i < 10_000; i++) {
              backend.gemm(false, a, false, b, 1f, 0f, c);
            }
          } catch (Throwable e) {
            seen.set(e);
          }
        });
        user.start();
        Thread.sleep(1);
        a.close();
        user.join();
        if (seen.get() != null) {
          assertTrue(seen.get() instanceof IllegalStateException, "got " + seen.get());
        }
        float[] out = c.toFloatArray();
        boolean untouched = Float.isNaN(out[0]); // closed before the first GEMM ran
        for (float v : out) {
          assertTrue(untouched ? Float.isNaN(v) : v == 256f, "c holds no GEMM or whole GEMMs, got " + v);
        }
      }
      assertEquals(2L * 256 * 256 * 4, backend.nativeBytes());
    }
  }
}
