package dev.plora.reliability;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Host copies under garbage-collector pressure, run in a JVM of its own by {@link HostCopyTest}
 * so that a crash is a failed test, not a lost test run. Phases:
 * <ul>
 *   <li>{@code gc}: uploads and downloads of a 16 MiB tensor while another thread churns the
 *       heap, after the copy path has been JIT-compiled on a small tensor. Staging memory freed
 *       by a collection during the native copy crashes the JVM here.
 *   <li>{@code rss}: one 1 MiB tensor written and read many times; prints the process RSS
 *       before and after, which must stay flat (host staging is bounded and reused).
 * </ul>
 */
public final class HostCopyStress {
  public static void main(String[] args) throws Exception {
    String phase = args[0];
    long budgetMillis = Long.parseLong(args[1]);
    try (Backend backend = Backends.create("cpu")) {
      switch (phase) {
        case "gc" -> gc(backend, budgetMillis);
        case "rss" -> rss(backend, Integer.parseInt(args[2]));
        default -> throw new IllegalArgumentException("phase: expected gc or rss, got " + phase);
      }
    }
  }

  private static void gc(Backend backend, long budgetMillis) {
    Thread churn = new Thread(() -> {
      byte[][] keep = new byte[4][];
      for (long i = 0; ; i++) {
        keep[(int) (i & 3)] = new byte[4 << 20];
      }
    });
    churn.setDaemon(true);
    churn.start();
    float[] small = new float[16];
    float[] big = new float[4096 * 1024];
    java.util.Arrays.fill(big, 1.5f);
    try (Tensor s = backend.allocate(4, 4, DType.F32); Tensor b = backend.allocate(4096, 1024, DType.F32)) {
      for (int i = 0; i < 60_000; i++) {
        s.copyFrom(small);
        s.toFloatArray();
      }
      long end = System.nanoTime() + budgetMillis * 1_000_000;
      int rounds = 0;
      while (System.nanoTime() < end) {
        b.copyFrom(big);
        if (rounds % 8 == 0 && b.toFloatArray()[4096 * 1024 - 1] != 1.5f) {
          throw new AssertionError("download read back a wrong value");
        }
        rounds++;
      }
      System.out.println("gc rounds " + rounds);
    }
  }

  private static void rss(Backend backend, int rounds) throws IOException {
    float[] values = new float[512 * 512];
    try (Tensor t = backend.allocate(512, 512, DType.F32); Tensor h = backend.allocate(512, 1024, DType.BF16)) {
      java.nio.FloatBuffer back = java.nio.FloatBuffer.allocate(values.length);
      Tensor half = h.colsView(0, 512);
      // nothing on the Java heap in the loops: no collection frees what a copy leaked
      for (int i = 0; i < 2_000; i++) { // warm-up: JIT, heap sizing
        t.copyFrom(values);
        t.copyTo(back.clear());
      }
      System.gc();
      long before = rssKiB();
      for (int i = 0; i < rounds; i++) {
        t.copyFrom(values);
        t.copyTo(back.clear());
        half.copyFrom(values);
      }
      long after = rssKiB();
      System.out.printf(Locale.ROOT, "rss_kib %d %d%n", before, after);
    }
  }

  static long rssKiB() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    throw new IllegalStateException("no VmRSS in /proc/self/status");
  }
}
