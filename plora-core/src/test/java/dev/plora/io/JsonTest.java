package dev.plora.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

class JsonTest {
  @TempDir Path dir;

  /** Parsing a number is quadratic in its digits: a million of them would take about 20 s. */
  @Test
  @Timeout(5)
  void aMillionDigitNumberIsRefusedQuicklyWithAShortMessage() {
    String digits = "7".repeat(1_000_000);
    for (String number : List.of(digits, "-" + digits, "0." + digits, "1e" + digits)) {
      Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse("[1, " + number + "]"));
      assertTrue(e.getMessage().startsWith("invalid JSON at offset 4: number of " + number.length() + " characters"),
          e.getMessage());
      assertTrue(e.getMessage().contains("limit of " + Json.MAX_NUMBER_CHARS), e.getMessage());
      assertTrue(e.getMessage().length() < 160, "echoes only a prefix: " + e.getMessage().length() + " characters");
    }
  }

  /** The safetensors header may be 100 MB: a long number in it is refused as quickly, naming the file. */
  @Test
  @Timeout(5)
  void aMillionDigitNumberInASafetensorsHeaderIsRefusedQuickly() throws IOException {
    byte[] header = ("{\"t\": {\"dtype\": \"F32\", \"shape\": [" + "1".repeat(1_000_000)
        + "], \"data_offsets\": [0, 4]}}").getBytes(StandardCharsets.UTF_8);
    ByteBuffer file = ByteBuffer.allocate(8 + header.length + 4).order(ByteOrder.LITTLE_ENDIAN);
    file.putLong(header.length).put(header).putFloat(1f);
    Path path = dir.resolve("long-number.safetensors");
    Files.write(path, file.array());
    SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Safetensors.open(path));
    assertTrue(e.getMessage().startsWith(path + ": header: invalid JSON at offset 33: number of 1000000 characters"),
        e.getMessage());
    assertTrue(e.getMessage().length() < 160 + path.toString().length(), e.getMessage());
  }

  @Test
  void numbersUpToTheLimitParseExactly() {
    String longest = "1" + "0".repeat(Json.MAX_NUMBER_CHARS - 1);
    assertEquals(List.of(new BigDecimal(longest)), Json.parse("[" + longest + "]"));
    assertThrows(Json.JsonException.class, () -> Json.parse("[" + longest + "0]"));
    for (String n : List.of("0", "-0", "9223372036854775807", "-9223372036854775808", "18446744073709551615",
        "4.9E-324", "1.7976931348623157e308", "-2.2250738585072014E-308", "6.02214076e+23", "1e-05")) {
      assertEquals(new BigDecimal(n), Json.parse(n), n);
    }
  }

  /** BigDecimal's scale is an int: a larger exponent is a JSON error like any other, not a NumberFormatException. */
  @Test
  void anExponentBeyondTheRangeIsAJsonError() {
    for (String n : List.of("1e2147483648", "1e-2147483649", "0.5e-2147483648")) {
      Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse("{\"r\": " + n + "}"));
      assertEquals("invalid JSON at offset 6: number " + n + " is out of range", e.getMessage());
    }
  }

  @Test
  void aRepeatedLongKeyIsEchoedOnlyInPart() {
    String key = "k".repeat(100_000);
    Json.JsonException e = assertThrows(Json.JsonException.class,
        () -> Json.parse("{\"a\": {\"" + key + "\": 1, \"" + key + "\": 2}}"));
    assertTrue(e.getMessage().startsWith("invalid JSON at offset "), e.getMessage());
    assertTrue(e.getMessage().contains("Duplicate field '" + "k".repeat(40) + "...'"), e.getMessage());
    assertTrue(e.getMessage().length() < 160, e.getMessage());
  }

  @Test
  void duplicateKeysAreRefusedAtAnyDepth() {
    for (String doc : List.of("{\"r\": 1, \"r\": 1}", "[{\"a\": {\"b\": 1, \"c\": 2, \"b\": 3}}]")) {
      Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse(doc));
      assertTrue(e.getMessage().contains("Duplicate field"), e.getMessage());
    }
    assertEquals(Map.of("a", Map.of("b", BigDecimal.ONE), "b", BigDecimal.ONE), Json.parse("{\"a\": {\"b\": 1}, \"b\": 1}"));
  }

  @Test
  void nestingIsLimited() {
    String deepest = "[".repeat(Json.MAX_DEPTH) + "1" + "]".repeat(Json.MAX_DEPTH);
    Object v = Json.parse(deepest);
    for (int i = 1; i < Json.MAX_DEPTH; i++) {
      v = ((List<?>) v).get(0);
    }
    assertEquals(List.of(BigDecimal.ONE), v);
    Json.JsonException e = assertThrows(Json.JsonException.class,
        () -> Json.parse("{\"a\": " + "[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH) + "}"));
    assertEquals("invalid JSON at offset " + (6 + Json.MAX_DEPTH - 1) + ": nested deeper than 64 levels", e.getMessage());
  }

  /** Jackson counts a number's digits; the limit here counts its sign, point and exponent too, as it always has. */
  @Test
  void signPointAndExponentCountTowardsTheNumberLimit() {
    String[][] longestAndOver = {{"-" + "1".repeat(255), "-" + "1".repeat(256)},
        {"1." + "0".repeat(254), "1." + "0".repeat(255)}, {"1.5e-" + "0".repeat(250) + "5", "1.5e-" + "0".repeat(251) + "5"}};
    for (String[] c : longestAndOver) {
      assertEquals(Json.MAX_NUMBER_CHARS, c[0].length());
      assertEquals(new BigDecimal(c[0]), Json.parse(c[0]));
      Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse("[" + c[1] + "]"));
      assertEquals("invalid JSON at offset 1: number of 257 characters is over the limit of 256: "
          + c[1].substring(0, 40) + "...", e.getMessage());
    }
  }

  @Test
  void anythingOutsideStrictJsonIsRefusedWithItsOffset() {
    String[][] cases = {{"", "0"}, {"  ", "2"}, {"{} x", "3"}, {"{}}", "2"}, {"[1] [2]", "4"}, {"[1,]", "3"},
        {"{\"a\": 1,}", "8"}, {"[01]", "2"}, {"[1.]", "2"}, {"[.5]", "1"}, {"[NaN]", "4"}, {"['a']", "1"},
        {"[\"\\x\"]", "3"}, {"[\"a\u0001\"]", "3"}, {"\ufeff{}", "0"}, {"[1]\u000b", "4"}, {"/* c */ 1", "0"},
        {"{a: 1}", "1"}, {"[tru]", "1"}, {"[\"abc", "5"}};
    for (String[] c : cases) {
      Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse(c[0]), c[0]);
      assertTrue(e.getMessage().startsWith("invalid JSON at offset " + c[1] + ": "), c[0] + ": " + e.getMessage());
      assertTrue(e.getMessage().length() < 200, e.getMessage());
    }
  }

  /** The strings a JSON escape can spell pass through; formats that need Unicode check (Safetensors). */
  @Test
  void stringsKeepWhatTheirEscapesSpell() {
    assertEquals(List.of("a\"\\/\b\f\n\r\t\u00e9\ud800", "\ud83d\ude00"),
        Json.parse("[\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00E9\\ud800\", \"\\ud83d\\ude00\"]"));
  }

  /** The bytes every format here has written: a checkpoint's checksum covers its metadata's JSON. */
  @Test
  void writesTheLayoutAndEscapesOfEarlierFiles() {
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("s", "q\"b\\n\nr\rt\t\u0000\u0008\u000c\u001f\u007f/é😀");
    doc.put("n", Arrays.asList(0, -7L, 9223372036854775807L, 2.5, 16.0, -1e15, 1e-5, 0.1f, new BigDecimal("1.50")));
    doc.put("e", List.of(Map.of(), List.of()));
    doc.put("z", Arrays.asList(true, false, null));
    assertEquals("{\"s\": \"q\\\"b\\\\n\\nr\\rt\\t\\u0000\\u0008\\u000c\\u001f\u007f/é😀\", "
        + "\"n\": [0, -7, 9223372036854775807, 2.5, 16, -1.0E15, 1.0E-5, 0.10000000149011612, 1.50], "
        + "\"e\": [{}, []], \"z\": [true, false, null]}", Json.write(doc));
  }

  @Test
  void writesOuterLevelsOneItemALine() {
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("backend", "cpu");
    doc.put("runs", List.of(Map.of("lr", Json.number(1e-3, "%.6g")), Map.of("lr", List.of(1, 2))));
    doc.put("none", List.of());
    assertEquals("{\n  \"backend\": \"cpu\",\n  \"runs\": [\n    {\"lr\": 0.00100000},\n    {\"lr\": [1, 2]}\n  ],\n"
        + "  \"none\": []\n}", Json.write(doc, 2));
  }

  @Test
  void nonFiniteNumbersAreNotWritten() {
    for (double v : new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.write(List.of(v)));
      assertTrue(e.getMessage().contains("JSON has no " + v), e.getMessage());
      assertEquals("[null]", Json.write(Arrays.asList(Json.number(v, "%.4f"))));
    }
    assertEquals("[1.2346, 1.00000e+20]", Json.write(List.of(Json.number(1.23456, "%.4f"), Json.number(1e20, "%.6g"))));
    assertThrows(IllegalArgumentException.class, () -> Json.number(1, "%.2f%%"));
  }

  @Test
  void documentsRoundTrip() {
    Map<String, Object> doc = Map.of("r", 8L, "targets", List.of("q_proj", "v_proj"));
    assertEquals(Map.of("r", BigDecimal.valueOf(8), "targets", List.of("q_proj", "v_proj")),
        Json.parse(Json.write(doc)));
  }
}
