package dev.plora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Temporary files of killed writes are removed by the next write of the same file; live ones are left alone. */
class AtomicFilesTest {
  @TempDir Path dir;

  /** A child process: starts writing a 4 MiB tensor to args[0], says "writing", then dies or waits as args[1] says. */
  public static void main(String[] args) throws Exception {
    Safetensors.Writer w = Safetensors.create(Path.of(args[0]),
        List.of(new Safetensors.Spec("t", Safetensors.Dtype.U8, new long[] {4 << 20})), Map.of(), true);
    w.write(ByteBuffer.allocate(4 << 20));
    System.out.println("writing");
    System.out.flush();
    if (args[1].equals("die")) {
      Runtime.getRuntime().halt(9); // no cleanup, as with SIGKILL
    }
    Thread.sleep(60_000);
  }

  private static Process startWriter(Path target, String then) throws Exception {
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
        System.getProperty("java.class.path"), AtomicFilesTest.class.getName(), target.toString(), then)
        .redirectErrorStream(true).start();
    String line = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
    assertEquals("writing", line);
    return p;
  }

  private List<Path> temps() throws Exception {
    try (var files = Files.list(dir)) {
      return files.filter(f -> f.getFileName().toString().endsWith(".tmp")).sorted().toList();
    }
  }

  @Test
  void theNextWriteOfAFileRemovesTheTemporariesOfKilledWritesOnly() throws Exception {
    Path target = dir.resolve("out.safetensors"), other = dir.resolve("other.safetensors");
    Process killed = startWriter(target, "die");
    assertTrue(killed.waitFor(30, TimeUnit.SECONDS));
    Process otherKilled = startWriter(other, "die");
    assertTrue(otherKilled.waitFor(30, TimeUnit.SECONDS));
    List<Path> leftovers = temps();
    assertEquals(2, leftovers.size(), "a killed write leaves its temporary: " + leftovers);
    Path otherTemp = leftovers.stream().filter(p -> p.getFileName().toString().startsWith(".other")).findFirst()
        .orElseThrow();
    Process live = startWriter(target, "wait");
    try {
      Path liveTemp = temps().stream().filter(p -> !leftovers.contains(p)).findFirst().orElseThrow();
      AtomicFiles.write(target, new byte[] {1, 2, 3}, true);
      assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(target));
      assertEquals(List.of(otherTemp, liveTemp).stream().sorted().toList(), temps(),
          "the killed write's temporary is gone; another file's and a live write's stay");
    } finally {
      live.destroyForcibly().waitFor();
    }
    Safetensors.writeFloats(other, Map.of("a", new float[] {1}), Map.of("a", new long[] {1}), Safetensors.Dtype.F32,
        Map.of(), true);
    AtomicFiles.write(target, new byte[] {4}, true);
    assertEquals(List.of(), temps(), "each file's next write cleans up after it");
  }
}
