package dev.plora.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.plora.Version;
import dev.plora.backend.Backends;
import dev.plora.backend.cuda.CudaSupport;
import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MainTest {
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    return Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
  }

  @Test
  void helpListsCommands() {
    assertEquals(0, run("--help"));
    String text = out.toString();
    assertTrue(text.contains("info") && text.contains("demo"), text);
  }

  @Test
  void infoReportsBackendsAndLibraries() {
    assertEquals(0, run("info"));
    String text = out.toString();
    assertTrue(text.contains("backends available: cpu"), text);
    assertTrue(text.contains("libjniCpuKernels.so"), text);
    assertTrue(text.matches("(?s).*BLAS threads [1-9].*"), text);
    assertTrue(text.matches("(?s).*cuda: (usable|unusable): .+.*"), text);
  }

  @Test
  void benchWritesItsJsonReport(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("out/bench.json");
    assertEquals(0, run("bench", "lora", "--backend", "cpu", "--shape", "64,33,29,4", "--runs", "3", "--warmup", "1",
        "--json", json.toString()), err.toString());
    String text = Files.readString(json);
    assertTrue(text.matches("(?s)\\{\\s*\"backend\": \"cpu\",\\s*\"threads\": [1-9]\\d*,\\s*\"results\": \\[.*\\]\\s*}\\s*"),
        text);
    for (String name : new String[] {"lora_fwd_bwd", "base_gemms", "unfused_lora_fwd_bwd"}) {
      Matcher m = Pattern.compile("\\{\"name\": \"" + name + "\", \"shape\": \"M=64,K=33,N=29,r=4\", "
          + "\"median_ms\": ([0-9.]+), \"min_ms\": ([0-9.]+), \"max_ms\": ([0-9.]+), \"runs\": 3, "
          + "\"bytes\": 0, \"flops\": 244992, \"achieved_gbps\": [0-9.]+, \"achieved_gflops\": ([0-9.]+), "
          + "\"ceiling\": \"gemm\", \"ceiling_rate\": ([0-9.]+), \"ratio_to_ceiling\": ([0-9.]+)}").matcher(text);
      assertTrue(m.find(), name + " in " + text);
      double median = Double.parseDouble(m.group(1)), min = Double.parseDouble(m.group(2)),
          max = Double.parseDouble(m.group(3));
      assertTrue(min > 0 && min <= median && median <= max, name + ": " + min + " " + median + " " + max);
      double gflops = Double.parseDouble(m.group(4)); // from the unrounded median: allow the median's rounding
      assertEquals(244992 / (median * 1e6), gflops, gflops * (0.00005 / median + 1e-3) + 1e-3);
      double ceiling = Double.parseDouble(m.group(5)), ratio = Double.parseDouble(m.group(6));
      assertTrue(ceiling > 0, name + ": the GEMM ceiling's rate");
      // both rates are printed to 3 decimals: allow their rounding
      assertEquals(gflops / ceiling, ratio, (0.0006 / gflops + 0.0006 / ceiling) * ratio + 1e-4,
          name + ": ratio = achieved / ceiling");
    }
    assertTrue(text.contains("{\"name\": \"memcpy\"") && text.contains("{\"name\": \"gemm\""), "ceilings recorded");
    assertTrue(out.toString().contains("lora_fwd_bwd / base_gemms"), out.toString());
  }

  @Test
  void kernelFamiliesReportBytesAndTheirCeiling(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("kernels.json");
    assertEquals(0, run("bench", "merge", "--backend", "cpu", "--runs", "3", "--warmup", "1", "--json", json.toString()),
        err.toString());
    String text = Files.readString(json);
    Matcher m = Pattern.compile("\\{\"name\": \"merge\", [^}]*\"bytes\": (\\d+), \"flops\": (\\d+), "
        + "\"achieved_gbps\": ([0-9.]+), [^}]*\"ceiling\": \"memcpy\", \"ceiling_rate\": ([0-9.]+), "
        + "\"ratio_to_ceiling\": ([0-9.]+)}").matcher(text);
    assertTrue(m.find(), text);
    assertEquals(2L * 4096 * 4096 * 4 + (4096L * 16 + 16L * 4096) * 4, Long.parseLong(m.group(1)), "W read + written");
    assertEquals(2L * 4096 * 4096 * 16, Long.parseLong(m.group(2)));
    double achieved = Double.parseDouble(m.group(3)), copyRate = Double.parseDouble(m.group(4));
    assertTrue(copyRate > 0, "the copy timed beside the merge has a rate");
    assertEquals(achieved / copyRate, Double.parseDouble(m.group(5)),
        (0.0006 / achieved + 0.0006 / copyRate) * achieved / copyRate + 1e-4, "ratio = achieved / the copy's rate");
    assertFalse(text.contains("lora_fwd_bwd"), "only the families asked for");
  }

  @Test
  void benchRejectsUnknownFamiliesAndShapes() {
    assertEquals(2, run("bench", "warp-drive"));
    assertTrue(err.toString().contains("unknown family 'warp-drive'"), err.toString());
    assertEquals(2, run("bench", "lora", "--shape", "64,33,29"));
    assertTrue(err.toString().contains("M,K,N,r"), err.toString());
  }

  @Test
  void unknownCommandIsBadInput() {
    assertEquals(2, run("frobnicate"));
  }

  @Test
  void helpWorksOnEveryCommandAndVersionOnTheTopLevel() {
    for (String command : new String[] {"info", "demo", "bench", "inspect", "merge", "help"}) {
      for (String flag : new String[] {"--help", "-h"}) {
        out.getBuffer().setLength(0);
        assertEquals(0, run(command, flag), command + " " + flag + ": " + err);
        assertTrue(out.toString().contains("Usage: plora " + command), command + " " + flag + ": " + out);
      }
    }
    assertEquals("", err.toString(), "help is not an error");
    for (String flag : new String[] {"--version", "-V"}) {
      out.getBuffer().setLength(0);
      assertEquals(0, run(flag));
      assertEquals("plora " + Version.get(), out.toString().strip());
    }
  }

  @Test
  void parseErrorsAreOneLineWithoutTheUsage() {
    for (String[] args : new String[][] {{"frobnicate"}, {"bench", "--frob"}, {"merge"}, {"inspect"},
        {"inspect", "a", "b"}, {"bench", "--runs", "many"}}) {
      err.getBuffer().setLength(0);
      assertEquals(2, run(args), String.join(" ", args));
      assertOneLine(String.join(" ", args));
      assertFalse(err.toString().contains("Usage:"), err.toString());
    }
  }

  @Test
  void anUnknownBackendPropertyIsRefused() {
    String before = System.getProperty(Backends.PROPERTY);
    System.setProperty(Backends.PROPERTY, "foo");
    try {
      assertEquals(2, run("info"));
    } finally {
      if (before == null) {
        System.clearProperty(Backends.PROPERTY);
      } else {
        System.setProperty(Backends.PROPERTY, before);
      }
    }
    assertOneLine("info");
    assertTrue(err.toString().contains("-Dplora.backend: expected cpu or cuda, got 'foo'"), err.toString());
    assertEquals("", out.toString(), "nothing printed before the refusal");
  }

  /** The environment can only be set for a new process: plora info in a JVM of its own. */
  @Test
  void anUnknownBackendEnvironmentVariableIsRefused() throws Exception {
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
        System.getProperty("java.class.path"), Main.class.getName(), "info");
    pb.environment().put(Backends.ENVIRONMENT, "foo");
    pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
    Process p = pb.start();
    String stderr = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(2, p.waitFor(), stderr);
    assertEquals(List.of("plora: PLORA_BACKEND: expected cpu or cuda, got 'foo'"), stderr.lines().toList());
  }

  @Test
  void cudaAskedForWhereUnusableIsOneLineWithTheProbesReason() {
    assumeFalse(CudaSupport.isUsable(), "CUDA is usable here");
    assertEquals(2, run("bench", "merge", "--backend", "cuda"));
    assertOneLine("bench --backend cuda");
    assertTrue(err.toString().contains("--backend=cuda: CUDA is unusable here") && err.toString().contains(
        CudaSupport.reason().strip().replaceAll("\\s*\\R\\s*", " ")), err.toString());
    assertEquals("", out.toString(), "refused before the benchmark starts");
  }

  /**
   * A FIFO where a file is expected is refused from its type, without opening it (an open would
   * wait for a writer for ever). Needs mkfifo; skipped with the reason otherwise.
   */
  @Test
  void aFifoIsRefusedWithoutOpeningIt(@TempDir Path dir) throws Exception {
    Path fifo = dir.resolve("fifo");
    assumeTrue(mkfifo(fifo), "mkfifo is not available here");
    Path[] merge = smallMerge(dir);
    List<String[]> cases = List.of(new String[] {"inspect", fifo.toString()},
        new String[] {"merge", "--base", fifo.toString(), "--adapter", merge[1].toString(), "--out",
            dir.resolve("m.safetensors").toString()},
        new String[] {"merge", "--base", merge[0].toString(), "--adapter", merge[1].toString(), "--out",
            fifo.toString(), "--force"},
        new String[] {"bench", "merge", "--json", fifo.toString()});
    for (String[] args : cases) {
      err.getBuffer().setLength(0);
      int code = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(20),
          () -> run(args), String.join(" ", args));
      assertEquals(2, code, String.join(" ", args) + ": " + err);
      assertOneLine(String.join(" ", args));
      assertTrue(err.toString().contains("not a regular file"), err.toString());
    }
  }

  /**
   * An output where no file can be made is refused before the work, in one line naming it, and
   * nothing is left. As root a read-only folder is still writable, so /proc (where even root
   * cannot make files) stands in for a read-only disk; otherwise a folder made read-only.
   */
  @Test
  void anUnwritableOutputIsOneLineNamingIt(@TempDir Path dir) throws Exception {
    Path[] merge = smallMerge(dir);
    Path target;
    if (isRoot()) {
      assumeTrue(Files.isDirectory(Path.of("/proc")), "no /proc here");
      target = Path.of("/proc/plora-merged.safetensors");
    } else {
      Path readOnly = Files.createDirectory(dir.resolve("read-only"));
      assertTrue(readOnly.toFile().setWritable(false, false));
      target = readOnly.resolve("merged.safetensors");
    }
    for (String[] args : new String[][] {{"merge", "--base", merge[0].toString(), "--adapter", merge[1].toString(),
        "--out", target.toString(), "--backend", "cpu"}, {"bench", "merge", "--json", target + ".json"},
        {"demo", "--out", target.resolveSibling("demo").toString()}}) {
      err.getBuffer().setLength(0);
      assertEquals(2, run(args), err.toString());
      assertOneLine(args[0]);
      assertTrue(err.toString().contains("cannot write " + target.getParent()), "names the output: " + err);
    }
    assertEquals("", out.toString(), "refused before the work");
    assertFalse(Files.exists(target));
  }

  /** A full disk mid-write: one line naming the output. Needs a 64 KiB tmpfs (root); skipped with the reason otherwise. */
  @Test
  void aFullDiskIsOneLineNamingTheOutput(@TempDir Path dir) throws Exception {
    Path small = Files.createDirectory(dir.resolve("small"));
    Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", small.toString())
        .redirectErrorStream(true).start();
    String why = new String(mount.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assumeTrue(mount.waitFor() == 0, "cannot mount a 64 KiB tmpfs here (" + why + ")");
    try {
      Path base = dir.resolve("base.safetensors");
      Safetensors.writeFloats(base, Map.of("big", new float[64 * 1024]), Map.of("big", new long[] {64, 1024}),
          Safetensors.Dtype.F32, Map.of(), false);
      Path adapter = dir.resolve("adapter");
      PeftAdapter.write(adapter, new PeftAdapter.Config(1, 1, 0, false, List.of()), List.of(), false);
      Path target = small.resolve("merged.safetensors");
      assertEquals(2, run("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
          target.toString(), "--backend", "cpu"), err.toString());
      assertOneLine("merge");
      assertTrue(err.toString().contains("cannot write " + target), err.toString());
      try (var files = Files.list(small)) {
        assertEquals(List.of(), files.toList(), "nothing left behind");
      }
    } finally {
      new ProcessBuilder("umount", small.toString()).start().waitFor();
    }
  }

  @Test
  void internalErrorsExitOneWithOneLineAskingForAReport() {
    assertEquals(1, Main.report(new PrintWriter(err, true), new NullPointerException("x was null\n  at somewhere")));
    assertOneLine("a bug");
    assertTrue(err.toString().contains("internal error: java.lang.NullPointerException: x was null at somewhere")
        && err.toString().contains("please report it"), err.toString());
    err.getBuffer().setLength(0);
    assertEquals(2, Main.report(new PrintWriter(err, true), new java.io.UncheckedIOException(
        new java.nio.file.FileSystemException("/data/x", null, "Read-only file system"))));
    assertEquals("plora: /data/x: Read-only file system", err.toString().strip(), "the environment's, not a bug");
  }

  private void assertOneLine(String what) {
    List<String> lines = err.toString().strip().lines().toList();
    assertEquals(1, lines.size(), what + ": one line on stderr, got " + err);
    assertTrue(lines.get(0).startsWith("plora: "), lines.get(0));
  }

  /** A base with one 2x3 module and a rank-1 adapter for it. */
  static Path[] smallMerge(Path dir) throws IOException {
    Path base = dir.resolve("base.safetensors");
    Safetensors.writeFloats(base, Map.of("m.weight", new float[] {1, 2, 3, 4, 5, 6}), Map.of("m.weight",
        new long[] {2, 3}), Safetensors.Dtype.F32, Map.of(), false);
    Path adapter = dir.resolve("adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(1, 2, 0, false, List.of("m")),
        List.of(new PeftAdapter.Module("m", 1, 3, 2, new float[] {0.1f, 0.2f, 0.3f}, new float[] {1, -1})), false);
    return new Path[] {base, adapter};
  }

  /** Makes a FIFO with mkfifo; false where there is no mkfifo. */
  static boolean mkfifo(Path fifo) throws InterruptedException {
    try {
      return new ProcessBuilder("mkfifo", fifo.toString()).redirectErrorStream(true).start().waitFor() == 0;
    } catch (IOException e) {
      return false;
    }
  }

  static boolean isRoot() throws IOException, InterruptedException {
    Process id = new ProcessBuilder("id", "-u").start();
    String uid = new String(id.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    return id.waitFor() == 0 && uid.equals("0");
  }
}
