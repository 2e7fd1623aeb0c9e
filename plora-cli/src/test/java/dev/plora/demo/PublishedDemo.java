package dev.plora.demo;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.io.Json;
import java.math.BigDecimal;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What the docs tests of both demos read: a README section's lines and a report.json's runs. */
public final class PublishedDemo {
  private PublishedDemo() {}

  /** The README lines from {@code heading} up to the next "## " section, so that two demos' tables never mix. */
  public static List<String> section(List<String> lines, String heading) {
    int start = lines.indexOf(heading);
    assertTrue(start >= 0, "README has no section " + heading);
    int end = start + 1;
    while (end < lines.size() && !lines.get(end).startsWith("## ")) {
      end++;
    }
    return lines.subList(start, end);
  }

  /** report.json's runs by method name. */
  @SuppressWarnings("unchecked")
  public static Map<String, Map<String, Object>> runs(String json) {
    Map<String, Map<String, Object>> runs = new LinkedHashMap<>();
    for (Object o : (List<Object>) ((Map<String, Object>) Json.parse(json)).get("runs")) {
      Map<String, Object> run = (Map<String, Object>) o;
      runs.put((String) run.get("method"), run);
    }
    return runs;
  }

  /** A number of a parsed report. */
  public static double number(Map<String, Object> run, String key) {
    return ((BigDecimal) run.get(key)).doubleValue();
  }
}
