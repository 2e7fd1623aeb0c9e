package dev.plora.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backends;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.io.StringWriter;
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

  private void assertOneLine(String what) {
    List<String> lines = err.toString().strip().lines().toList();
    assertEquals(1, lines.size(), what + ": one line on stderr, got " + err);
    assertTrue(lines.get(0).startsWith("plora: "), lines.get(0));
  }
}
