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
        () -> Json.parse("{\"" + key + "\": 1, \"" + key + "\": 2}"));
    assertTrue(e.getMessage().startsWith("invalid JSON at offset 100008: duplicate key \"kkkk"), e.getMessage());
    assertTrue(e.getMessage().length() < 160, e.getMessage());
  }

  @Test
  void documentsRoundTrip() {
    Map<String, Object> doc = Map.of("r", 8L, "targets", List.of("q_proj", "v_proj"));
    assertEquals(Map.of("r", BigDecimal.valueOf(8), "targets", List.of("q_proj", "v_proj")),
        Json.parse(Json.write(doc)));
  }
}
