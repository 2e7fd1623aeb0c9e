package dev.plora.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.cli.Main;
import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.ArrayList;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Property-based fuzzing of the file readers and the CLI on mutated inputs: every input is
 * either accepted or refused with a documented exception (the CLI: exit code 2 and one line on
 * stderr). Runs {@code jqwik.tries.default} inputs per property: 500 by default, 10,000 with
 * {@code mvn verify -Pfuzz}.
 */
class FuzzTest {
  private static Path dir;
  private static byte[] validFile;
  private static String validConfig;
  private static byte[] validAdapterWeights;
  private static boolean haveFifo;

  @BeforeContainer
  static void setUp() throws Exception {
    dir = Files.createTempDirectory("plora-fuzz");
    Path base = dir.resolve("seed.safetensors");
    Map<String, float[]> values = new LinkedHashMap<>();
    values.put("m.weight", new float[] {1, 2, 3, 4, 5, 6});
    values.put("m.bias", new float[] {0.5f, -0.5f});
    Safetensors.writeFloats(base, values, Map.of("m.weight", new long[] {2, 3}, "m.bias", new long[] {2}),
        Safetensors.Dtype.F32, Map.of("format", "pt"), false);
    validFile = Files.readAllBytes(base);
    Path adapter = dir.resolve("seed-adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(1, 2, 0, false, List.of("m")),
        List.of(new PeftAdapter.Module("m", 1, 3, 2, new float[] {0.1f, 0.2f, 0.3f}, new float[] {1, -1})), false);
    validConfig = Files.readString(adapter.resolve(PeftAdapter.CONFIG));
    validAdapterWeights = Files.readAllBytes(adapter.resolve(PeftAdapter.WEIGHTS));

    // Paths that are not what the CLI expects, for theCliRefusesBadPathsAndSettingsWithOneLine.
    Files.createDirectories(dir.resolve("a-folder"));
    Files.writeString(dir.resolve("a-file"), "not a folder");
    Files.createSymbolicLink(dir.resolve("loop-a"), dir.resolve("loop-b"));
    Files.createSymbolicLink(dir.resolve("loop-b"), dir.resolve("loop-a"));
    try { // FIFO cases only where mkfifo exists
      haveFifo = new ProcessBuilder("mkfifo", dir.resolve("a-fifo").toString()).start().waitFor() == 0;
    } catch (IOException e) {
      haveFifo = false;
    }
    adapterWithConfig("non-utf8", validConfig.replace("\"LORA\"", "\"LO\u00ffRA\"")
        .getBytes(StandardCharsets.ISO_8859_1)); // a lone 0xff byte: not UTF-8
    adapterWithConfig("huge-r", validConfig.replaceFirst("\"r\": \\d+", "\"r\": 3000000000")
        .getBytes(StandardCharsets.UTF_8));
    Path huge = adapterWithConfig("huge-config", new byte[0]);
    try (var file = new java.io.RandomAccessFile(huge.resolve(PeftAdapter.CONFIG).toFile(), "rw")) {
      file.setLength(3L << 30); // 3 GiB, sparse: reading it whole would not fit in an array
    }
    Files.createDirectories(dir.resolve("config-is-a-folder").resolve(PeftAdapter.CONFIG));
    Files.write(dir.resolve("config-is-a-folder").resolve(PeftAdapter.WEIGHTS), validAdapterWeights);
    Files.createDirectories(dir.resolve("report-is-a-folder").resolve("report.json"));
    if (haveFifo) {
      Path fifoWeights = Files.createDirectories(dir.resolve("fifo-weights"));
      Files.writeString(fifoWeights.resolve(PeftAdapter.CONFIG), validConfig);
      Files.createSymbolicLink(fifoWeights.resolve(PeftAdapter.WEIGHTS), dir.resolve("a-fifo"));
    }
  }

  private static Path adapterWithConfig(String name, byte[] config) throws IOException {
    Path adapter = Files.createDirectories(dir.resolve(name));
    Files.write(adapter.resolve(PeftAdapter.CONFIG), config);
    Files.write(adapter.resolve(PeftAdapter.WEIGHTS), validAdapterWeights);
    return adapter;
  }

  @AfterContainer
  static void tearDown() throws IOException {
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  /** A random corruption of {@code bytes}: flips, truncation, insertion, header-length edits, JSON splices. */
  static byte[] mutate(byte[] bytes, long seed) {
    Random rng = new Random(seed);
    byte[] out = bytes.clone();
    int kinds = 1 + rng.nextInt(3);
    for (int k = 0; k < kinds; k++) {
      switch (rng.nextInt(6)) {
        case 0 -> out[rng.nextInt(out.length)] ^= (byte) (1 << rng.nextInt(8));
        case 1 -> out = java.util.Arrays.copyOf(out, rng.nextInt(out.length + 1));
        case 2 -> {
          int at = rng.nextInt(out.length + 1);
          byte[] ins = new byte[1 + rng.nextInt(8)];
          rng.nextBytes(ins);
          byte[] grown = new byte[out.length + ins.length];
          System.arraycopy(out, 0, grown, 0, at);
          System.arraycopy(ins, 0, grown, at, ins.length);
          System.arraycopy(out, at, grown, at + ins.length, out.length - at);
          out = grown;
        }
        case 3 -> {
          if (out.length >= 8) {
            long[] lengths = {0, 1, 7, out.length, out.length - 8, Long.MAX_VALUE, -1, 1L << 40, rng.nextInt(200)};
            ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(0, lengths[rng.nextInt(lengths.length)]);
          }
        }
        case 4 -> {
          String text = new String(out, StandardCharsets.ISO_8859_1);
          String[] from = {"F32", "[2, 3]", "data_offsets", "\"shape\"", "{", "}", ",", "0, 24", "__metadata__", "\"pt\""};
          String[] to = {"F7", "[3, 3]", "data_offset", "\"shape\": [1], \"x\"", "[", "", ",,", "24, 0", "m.bias", "3"};
          int i = rng.nextInt(from.length);
          out = text.replaceFirst(java.util.regex.Pattern.quote(from[i]), java.util.regex.Matcher.quoteReplacement(to[i]))
              .getBytes(StandardCharsets.ISO_8859_1);
        }
        default -> {
          if (out.length > 0) {
            int at = rng.nextInt(out.length);
            out[at] = (byte) rng.nextInt(256);
          }
        }
      }
      if (out.length == 0) {
        break;
      }
    }
    return out;
  }

  @Property
  void theSafetensorsReaderAcceptsOrRefusesClearly(@ForAll long seed) throws IOException {
    Path file = dir.resolve("st-" + Long.toHexString(seed) + ".safetensors");
    Files.write(file, mutate(validFile, seed));
    try (Safetensors.Reader r = Safetensors.open(file)) {
      for (Safetensors.Entry e : r.entries()) { // an accepted file reads back whole
        ByteBuffer data = r.data(e.name());
        assertEquals(e.bytes(), data.remaining());
        if (e.dtype().isFloat() && e.elements() < 1 << 20) {
          assertEquals(e.elements(), r.floats(e.name()).length);
        }
      }
    } catch (IllegalArgumentException | IOException e) {
      assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), "a refusal says why");
    } finally {
      Files.deleteIfExists(file);
    }
  }

  @Property
  void thePeftLoaderAcceptsOrRefusesClearly(@ForAll long seed) throws IOException {
    Path adapter = dir.resolve("ad-" + Long.toHexString(seed));
    Files.createDirectories(adapter);
    Random rng = new Random(seed);
    byte[] config = validConfig.getBytes(StandardCharsets.UTF_8);
    byte[] weights = validAdapterWeights;
    if (rng.nextBoolean()) {
      config = mutate(config, seed);
    } else {
      weights = mutate(weights, seed);
    }
    Files.write(adapter.resolve(PeftAdapter.CONFIG), config);
    Files.write(adapter.resolve(PeftAdapter.WEIGHTS), weights);
    try {
      PeftAdapter read = PeftAdapter.read(adapter);
      for (PeftAdapter.Module m : read.modules().values()) {
        assertEquals((long) m.r() * m.in(), m.a().length);
      }
    } catch (IllegalArgumentException | IOException e) {
      assertTrue(e.getMessage() != null && !e.getMessage().isBlank(), "a refusal says why");
    } finally {
      Files.deleteIfExists(adapter.resolve(PeftAdapter.CONFIG));
      Files.deleteIfExists(adapter.resolve(PeftAdapter.WEIGHTS));
      Files.deleteIfExists(adapter);
    }
  }

  /** plora inspect and plora merge on mutated inputs: exit 0, or 2 with one line on stderr. */
  @Property
  void theCliExitsZeroOrTwoWithOneLine(@ForAll long seed) throws IOException {
    Path file = dir.resolve("cli-" + Long.toHexString(seed) + ".safetensors");
    Files.write(file, mutate(validFile, seed));
    Path out = dir.resolve("cli-" + Long.toHexString(seed) + "-out.safetensors");
    try {
      for (String[] args : new String[][] {{"inspect", file.toString()},
          {"merge", "--base", file.toString(), "--adapter", dir.resolve("seed-adapter").toString(), "--out",
              out.toString(), "--backend", "cpu", "--force"}}) {
        StringWriter o = new StringWriter(), e = new StringWriter();
        int code = Main.run(new PrintWriter(o, true), new PrintWriter(e, true), args);
        assertTrue(code == 0 || code == 2, args[0] + " exited " + code + ": " + e);
        if (code == 2) {
          assertEquals(1, e.toString().strip().lines().count(), args[0] + ": one line, got " + e);
        }
      }
    } finally {
      Files.deleteIfExists(file);
      Files.deleteIfExists(out);
    }
  }

  /**
   * User and environment errors: folders, FIFOs, symlink loops and empty paths where files are
   * expected, broken adapter configs, outputs that are folders or under files or unwritable, bad
   * bench shapes, unknown or unusable backends, bad options. Each exits 2 with one line on
   * stderr, before any work (nothing on stdout) and without writing anything.
   */
  @Property
  void theCliRefusesBadPathsAndSettingsWithOneLine(@ForAll("badInvocations") List<String> args) throws Exception {
    StringWriter o = new StringWriter(), e = new StringWriter();
    int code = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(20),
        () -> Main.run(new PrintWriter(o, true), new PrintWriter(e, true), args.toArray(String[]::new)), args::toString);
    assertEquals(2, code, args + ": " + e);
    List<String> lines = e.toString().strip().lines().toList();
    assertEquals(1, lines.size(), args + ": one line, got " + e);
    assertTrue(lines.get(0).startsWith("plora: "), lines.get(0));
    assertEquals("", o.toString(), args + ": refused before any work");
    assertTrue(!Files.exists(dir.resolve("never-written")), args + " wrote its output");
  }

  @Provide
  Arbitrary<List<String>> badInvocations() throws Exception {
    String folder = dir.resolve("a-folder").toString(), file = dir.resolve("a-file").toString();
    String loop = dir.resolve("loop-a").toString(), fifo = dir.resolve("a-fifo").toString();
    String base = dir.resolve("seed.safetensors").toString(), adapter = dir.resolve("seed-adapter").toString();
    String out = dir.resolve("never-written").toString();
    // As root a read-only folder is still writable: /proc stands in for a read-only disk there.
    String readOnly = isRoot() ? "/proc/plora-out" : readOnlyFolder().resolve("out").toString();
    List<List<String>> cases = new ArrayList<>();
    for (String input : new String[] {folder, "", loop, dir.resolve("missing").toString(), file + "/x"}) {
      cases.add(List.of("inspect", input));
      cases.add(List.of("merge", "--base", input, "--adapter", adapter, "--out", out));
    }
    for (String bad : new String[] {file, folder + "/missing", "non-utf8", "huge-r", "huge-config",
        "config-is-a-folder", "a-folder", ""}) {
      String path = bad.startsWith("/") || bad.isEmpty() ? bad : dir.resolve(bad).toString();
      cases.add(List.of("merge", "--base", base, "--adapter", path, "--out", out));
    }
    for (String target : new String[] {folder, file + "/sub.safetensors", "", readOnly + ".safetensors", loop,
        base}) {
      cases.add(List.of("merge", "--base", base, "--adapter", adapter, "--out", target));
    }
    for (String target : new String[] {folder, file + "/x.json", "", readOnly + "/x.json"}) {
      cases.add(List.of("bench", "merge", "--backend", "cpu", "--json", target));
    }
    for (String shape : new String[] {"1,2,3", "1,2,3,4,", "0,1,1,1", "a,1,1,1", "-1,2,3,4", "99999999999,1,1,1",
        "1,2,3,2147483647", "100000000,100000000,100000000,64", ""}) {
      cases.add(List.of("bench", "lora", "--backend", "cpu", "--shape", shape));
    }
    cases.add(List.of("bench", "lora", "--backend", "foo"));
    if (!dev.plora.backend.cuda.CudaSupport.isUsable()) {
      cases.add(List.of("bench", "lora", "--backend", "cuda"));
      cases.add(List.of("demo", "--quick", "--backend", "cuda", "--out", out));
    }
    for (String target : new String[] {file, file + "/sub", dir.resolve("report-is-a-folder").toString(), "",
        readOnly}) {
      cases.add(List.of("demo", "--quick", "--backend", "cpu", "--out", target));
    }
    if (haveFifo) {
      cases.add(List.of("inspect", fifo));
      cases.add(List.of("merge", "--base", fifo, "--adapter", adapter, "--out", out));
      cases.add(List.of("merge", "--base", base, "--adapter", dir.resolve("fifo-weights").toString(), "--out", out));
      cases.add(List.of("merge", "--base", base, "--adapter", adapter, "--out", fifo, "--force"));
      cases.add(List.of("bench", "merge", "--json", fifo));
    }
    cases.add(List.of("frobnicate"));
    cases.add(List.of("merge", "--base", base));
    cases.add(List.of("inspect", "--frob", base));
    return Arbitraries.of(cases);
  }

  /** plora merge with mutated adapter configs (bytes that are not UTF-8, spliced JSON): exit 0, or 2 with one line. */
  @Property
  void theCliMergesOrRefusesMutatedAdapterConfigs(@ForAll long seed) throws IOException {
    Path adapter = adapterWithConfig("cfg-" + Long.toHexString(seed), mutate(validConfig.getBytes(StandardCharsets.UTF_8),
        seed));
    Path out = dir.resolve("cfg-" + Long.toHexString(seed) + "-out.safetensors");
    try {
      StringWriter o = new StringWriter(), e = new StringWriter();
      int code = Main.run(new PrintWriter(o, true), new PrintWriter(e, true), "merge", "--base",
          dir.resolve("seed.safetensors").toString(), "--adapter", adapter.toString(), "--out", out.toString(),
          "--backend", "cpu");
      assertTrue(code == 0 || code == 2, "merge exited " + code + ": " + e);
      if (code == 2) {
        assertEquals(1, e.toString().strip().lines().count(), "one line, got " + e);
      }
    } finally {
      Files.deleteIfExists(adapter.resolve(PeftAdapter.CONFIG));
      Files.deleteIfExists(adapter.resolve(PeftAdapter.WEIGHTS));
      Files.deleteIfExists(adapter);
      Files.deleteIfExists(out);
    }
  }

  private static boolean isRoot() throws IOException, InterruptedException {
    Process id = new ProcessBuilder("id", "-u").start();
    String uid = new String(id.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    return id.waitFor() == 0 && uid.equals("0");
  }

  private static Path readOnlyFolder() throws IOException {
    Path readOnly = Files.createDirectories(dir.resolve("read-only"));
    readOnly.toFile().setWritable(false, false);
    return readOnly;
  }
}
