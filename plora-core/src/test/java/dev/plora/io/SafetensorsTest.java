package dev.plora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.io.Safetensors.Dtype;
import dev.plora.io.Safetensors.Spec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
  @TempDir Path dir;

  /** Every dtype round trips byte for byte, with metadata, empty and scalar tensors. */
  @Test
  void everyDtypeRoundTrips() throws IOException {
    SplittableRandom rng = new SplittableRandom(1);
    List<Spec> specs = new ArrayList<>();
    List<byte[]> data = new ArrayList<>();
    for (Dtype d : Dtype.values()) {
      long[] shape = d.ordinal() % 3 == 0 ? new long[] {3, 5} : d.ordinal() % 3 == 1 ? new long[] {7} : new long[] {2, 1, 3};
      specs.add(new Spec("t_" + d.name().toLowerCase(), d, shape));
      byte[] bytes = new byte[(int) specs.get(specs.size() - 1).bytes()];
      for (int i = 0; i < bytes.length; i++) {
        bytes[i] = (byte) (d == Dtype.BOOL ? rng.nextInt(2) : rng.nextInt(256));
      }
      data.add(bytes);
    }
    specs.add(new Spec("empty", Dtype.F32, new long[] {0, 4}));
    data.add(new byte[0]);
    specs.add(new Spec("scalar", Dtype.F64, new long[] {}));
    data.add(new byte[8]);
    Path file = dir.resolve("all.safetensors");
    try (Safetensors.Writer w = Safetensors.create(file, specs, Map.of("format", "pt", "note", "ünïcode"), false)) {
      for (byte[] b : data) {
        w.write(ByteBuffer.wrap(b));
      }
      w.commit();
    }
    try (Safetensors.Reader r = Safetensors.open(file)) {
      assertEquals(Map.of("format", "pt", "note", "ünïcode"), r.metadata());
      assertEquals(specs.size(), r.entries().size());
      for (int i = 0; i < specs.size(); i++) {
        Spec s = specs.get(i);
        assertEquals(s.dtype(), r.entry(s.name()).dtype());
        assertArrayEquals(s.shape(), r.entry(s.name()).shape());
        ByteBuffer b = r.data(s.name());
        byte[] back = new byte[b.remaining()];
        b.get(back);
        assertArrayEquals(data.get(i), back, s.name());
      }
    }
  }

  /** The bytes on disk follow the spec; this parses the header itself, not with the reader. */
  @Test
  void writtenBytesMatchTheSpec() throws IOException {
    Path file = dir.resolve("spec.safetensors");
    Map<String, float[]> values = new java.util.LinkedHashMap<>();
    values.put("a", new float[] {1f, -2f, 3.5f});
    values.put("b", new float[] {0.25f, 0.5f});
    Safetensors.writeFloats(file, values, Map.of("a", new long[] {3}, "b", new long[] {1, 2}), Dtype.F32,
        Map.of("format", "pt"), false);
    byte[] all = Files.readAllBytes(file);
    ByteBuffer bb = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
    long n = bb.getLong();
    assertEquals(0, n % 8, "header padded to a multiple of 8");
    String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
    assertEquals(header.strip(), header.substring(0, header.strip().length()), "padding is trailing spaces");
    assertTrue(header.strip().endsWith("}"));
    assertEquals("{\"__metadata__\": {\"format\": \"pt\"}, \"a\": {\"dtype\": \"F32\", \"shape\": [3], "
        + "\"data_offsets\": [0, 12]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1, 2], \"data_offsets\": [12, 20]}}",
        header.strip());
    assertEquals(8 + n + 20, all.length, "no holes: the data section is exactly 20 bytes");
    bb.position((int) (8 + n));
    assertEquals(1f, bb.getFloat());
    assertEquals(-2f, bb.getFloat());
    assertEquals(3.5f, bb.getFloat());
    assertEquals(0.25f, bb.getFloat());
  }

  private Path raw(String name, String header, int dataBytes) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    Path file = dir.resolve(name);
    Files.write(file, b.array());
    return file;
  }

  private void assertRejected(Path file, String... mentions) {
    SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Safetensors.open(file).close());
    assertTrue(e.getMessage().startsWith(file.toString()), "names the file: " + e.getMessage());
    for (String m : mentions) {
      assertTrue(e.getMessage().contains(m), "\"" + e.getMessage() + "\" should mention \"" + m + "\"");
    }
  }

  @Test
  void malformedFilesAreRejectedWithWhatAndWhere() throws IOException {
    String ok = "{\"x\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
    Safetensors.open(raw("ok.safetensors", ok, 8)).close();

    Path tiny = dir.resolve("tiny.safetensors");
    Files.write(tiny, new byte[] {1, 2, 3});
    assertRejected(tiny, "truncated", "3 bytes");
    Path past = dir.resolve("past.safetensors");
    Files.write(past, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(500).array());
    assertRejected(past, "header length 500", "past the end");
    Path huge = dir.resolve("huge.safetensors");
    Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
    assertRejected(huge, "over the limit");
    assertRejected(raw("short.safetensors", ok, 4), "cover 8 bytes", "has 4");
    assertRejected(raw("hole.safetensors",
        "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
            + "\"y\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12), "'y'", "hole after byte 4");
    assertRejected(raw("overlap.safetensors",
        "{\"x\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
            + "\"y\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8), "overlap");
    assertRejected(raw("dtype.safetensors", ok.replace("F32", "F7"), 8), "'x'", "unknown dtype 'F7'");
    assertRejected(raw("size.safetensors", ok.replace("[2]", "[3]"), 8), "needs 12 bytes", "hold 8");
    assertRejected(raw("json.safetensors", "{\"x\": {\"dtype\": \"F32\",", 0), "invalid JSON", "offset");
    assertRejected(raw("dup.safetensors", "{\"x\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}, "
        + "\"x\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}}", 0), "Duplicate field 'x'");
    assertRejected(raw("meta.safetensors", "{\"__metadata__\": {\"format\": 3}}", 0), "'format'", "not a string");
    assertRejected(raw("top.safetensors", "[1, 2]", 0), "top level");
    assertRejected(raw("neg.safetensors", ok.replace("[2]", "[-2]"), 8), "not a non-negative integer");
    assertRejected(raw("field.safetensors", ok.replace("\"shape\"", "\"extra\": 1, \"shape\""), 8), "unknown field");
    byte[] badUtf8 = {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'};
    ByteBuffer b = ByteBuffer.allocate(8 + badUtf8.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(badUtf8.length).put(badUtf8);
    Path utf = dir.resolve("utf.safetensors");
    Files.write(utf, b.array());
    assertRejected(utf, "not valid UTF-8");
  }

  /**
   * A name or metadata string that is not valid Unicode (a lone surrogate from a JSON escape)
   * would be written back as '?', so it is refused when the file is read, and by the writer: in a
   * key (tensor name, metadata key) by the JSON parser, in a metadata value by the format's check.
   */
  @Test
  void loneSurrogatesAreRefusedWhereTheyAreRead() throws IOException {
    String tensor = "{\"a\\ud800b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
    assertRejected(raw("lone.safetensors", tensor, 4), "header: invalid JSON at offset 9", "surrogate");
    assertRejected(raw("low.safetensors", tensor.replace("\\ud800", "\\udc00"), 4), "invalid JSON", "low surrogate");
    assertRejected(raw("meta-key.safetensors", "{\"__metadata__\": {\"k\\udfff\": \"v\"}}", 0), "invalid JSON",
        "surrogate");
    assertRejected(raw("meta-value.safetensors", "{\"__metadata__\": {\"k\": \"\\ud83d\"}}", 0), "metadata value",
        "\\ud83d");
    String pair = "{\"a\\ud83d\\ude00\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
    try (Safetensors.Reader r = Safetensors.open(raw("pair.safetensors", pair, 4))) {
      assertEquals("a\ud83d\ude00", r.entries().get(0).name(), "a surrogate pair is a valid character");
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Safetensors.create(
        dir.resolve("w.safetensors"), List.of(new Spec("x\ud800", Dtype.F32, new long[] {1})), Map.of(), false));
    assertTrue(e.getMessage().contains("x\\ud800") && e.getMessage().contains("lone surrogate"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("w.safetensors")));
  }

  @Test
  void f8TensorsAreReadAndListedAsSuch() throws IOException {
    String header = "{\"a\": {\"dtype\": \"F8_E4M3\", \"shape\": [2, 2], \"data_offsets\": [0, 4]}, "
        + "\"b\": {\"dtype\": \"F8_E5M2\", \"shape\": [3], \"data_offsets\": [4, 7]}}";
    try (Safetensors.Reader r = Safetensors.open(raw("f8.safetensors", header, 7))) {
      assertEquals(Dtype.F8_E4M3, r.entry("a").dtype());
      assertEquals(Dtype.F8_E5M2, r.entry("b").dtype());
      assertEquals(3, r.entry("b").bytes());
      assertFalse(r.entry("a").dtype().isFloat(), "not converted: no arithmetic on F8 here");
    }
  }

  /** Tensors are read and written in ranges, so a tensor over 2 GiB streams (a sparse file: no disk used). */
  @Test
  void tensorsOver2GiBAreReadInRanges() throws IOException {
    long elements = (1L << 29) + 3; // 2 GiB + 12 bytes of F32
    String json = "{\"big\": {\"dtype\": \"F32\", \"shape\": [" + elements + "], \"data_offsets\": [0, "
        + elements * 4 + "]}}";
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    Path file = dir.resolve("sparse.safetensors");
    try (var f = new java.io.RandomAccessFile(file.toFile(), "rw")) {
      f.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
      f.write(h);
      f.setLength(8 + h.length + elements * 4);
      f.seek(8 + h.length + elements * 4 - 4);
      f.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(2.5f).array());
    }
    try (Safetensors.Reader r = Safetensors.open(file)) {
      ByteBuffer tail = r.data("big", elements * 4 - 8, 8);
      assertEquals(0f, tail.getFloat());
      assertEquals(2.5f, tail.getFloat());
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.data("big"));
      assertTrue(e.getMessage().contains("'big'") && e.getMessage().contains("ranges"), e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> r.data("big", elements * 4 - 4, 8));
    }
  }

  /** Float values written to a narrower dtype: finite values that would become ±Inf are refused; NaN and Inf stay. */
  @Test
  void valuesThatOverflowTheirDtypeAreRefused() throws IOException {
    Path file = dir.resolve("f16.safetensors");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Safetensors.writeFloats(file,
        Map.of("h", new float[] {1, 65504, 70000}), Map.of("h", new long[] {3}), Dtype.F16, Map.of(), false));
    assertTrue(e.getMessage().contains("'h'") && e.getMessage().contains("element 2") && e.getMessage().contains("F16"),
        e.getMessage());
    assertFalse(Files.exists(file), "nothing written");
    float[] odd = {Float.NaN, Float.NEGATIVE_INFINITY, 3e38f, -0f};
    Safetensors.writeFloats(file, Map.of("b", odd), Map.of("b", new long[] {4}), Dtype.BF16, Map.of(), false);
    try (Safetensors.Reader r = Safetensors.open(file)) {
      float[] back = r.floats("b");
      assertTrue(Float.isNaN(back[0]) && back[1] == Float.NEGATIVE_INFINITY && Float.isFinite(back[2]), "" + back[2]);
    }
  }

  /** A tensor written in parts equals one written whole; parts may not run past the tensor. */
  @Test
  void tensorsCanBeWrittenInParts() throws IOException {
    Path whole = dir.resolve("whole.safetensors"), parts = dir.resolve("parts.safetensors");
    List<Spec> specs = List.of(new Spec("a", Dtype.U8, new long[] {5}), new Spec("b", Dtype.U8, new long[] {0}),
        new Spec("c", Dtype.U8, new long[] {2}));
    try (Safetensors.Writer w = Safetensors.create(whole, specs, Map.of(), false)) {
      w.write(ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5}));
      w.write(ByteBuffer.allocate(0));
      w.write(ByteBuffer.wrap(new byte[] {6, 7}));
      w.commit();
    }
    try (Safetensors.Writer w = Safetensors.create(parts, specs, Map.of(), false)) {
      w.append(ByteBuffer.wrap(new byte[] {1, 2}));
      assertThrows(IllegalArgumentException.class, () -> w.append(ByteBuffer.wrap(new byte[] {3, 4, 5, 6})));
      assertThrows(IllegalStateException.class, () -> w.write(ByteBuffer.wrap(new byte[] {3, 4, 5})),
          "a whole tensor cannot follow a part");
      w.append(ByteBuffer.wrap(new byte[] {3, 4, 5}));
      w.append(ByteBuffer.allocate(0));
      w.append(ByteBuffer.wrap(new byte[] {6}));
      w.append(ByteBuffer.wrap(new byte[] {7}));
      w.commit();
    }
    assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(parts));
  }

  @Test
  void aWriterThatIsNotCommittedLeavesNothingAndExistingFilesNeedOverwrite() throws IOException {
    Path file = dir.resolve("keep.safetensors");
    Safetensors.writeFloats(file, Map.of("a", new float[] {1f}), Map.of("a", new long[] {1}), Dtype.F32, Map.of(), false);
    byte[] before = Files.readAllBytes(file);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
        Safetensors.writeFloats(file, Map.of("a", new float[] {2f}), Map.of("a", new long[] {1}), Dtype.F32, Map.of(),
            false));
    assertTrue(e.getMessage().contains("exists"), e.getMessage());
    try (Safetensors.Writer w = Safetensors.create(file, List.of(new Spec("a", Dtype.F32, new long[] {1})), Map.of(),
        true)) {
      w.write(new float[] {3f});
      // no commit: an interrupted write
    }
    assertArrayEquals(before, Files.readAllBytes(file), "the old file is untouched");
    try (var files = Files.list(dir)) {
      assertFalse(files.anyMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary left behind");
    }
  }
}
