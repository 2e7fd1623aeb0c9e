package dev.plora.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Host ↔ backend copies run in a JVM of their own ({@link HostCopyStress}) so that a crash fails the test. */
class HostCopyTest {
  @Test
  void copiesSurviveGarbageCollectionDuringTheNativeCall() throws Exception {
    String out = run(HostCopyStress.class, "gc", "5000");
    assertTrue(out.contains("gc rounds"), out);
  }

  @Test
  void repeatedCopiesKeepTheProcessSizeFlat() throws Exception {
    assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "RSS is read from /proc/self/status (Linux only)");
    String out = run(HostCopyStress.class, "rss", "0", "10000");
    String[] f = out.lines().filter(l -> l.startsWith("rss_kib")).findFirst().orElseThrow().split(" ");
    long before = Long.parseLong(f[1]), after = Long.parseLong(f[2]);
    // 10,000 rounds copy 30 GiB through staging; a fresh buffer per copy grew RSS by gigabytes.
    assertTrue(after - before < 64 * 1024, "RSS grew from " + before / 1024 + " to " + after / 1024 + " MiB");
  }

  /** Runs {@code main} in a fresh JVM (no -Xmx: the JVM's own default heap), returning its output. */
  private static String run(Class<?> main, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path")));
    String cache = System.getProperty("org.bytedeco.javacpp.cachedir");
    if (cache != null) {
      command.add("-Dorg.bytedeco.javacpp.cachedir=" + cache);
    }
    command.add(main.getName());
    command.addAll(List.of(args));
    command.add(1, "-XX:ErrorFile=" + Path.of("target", "hs_err_stress_%p.log").toAbsolutePath());
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    int code = p.waitFor();
    assertEquals(0, code, "the stress JVM exited with " + code + ":\n" + out);
    return out;
  }
}
