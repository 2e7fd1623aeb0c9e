package dev.plora.demo;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

/** The README section a docs test reads its table from, so that two demos' tables never mix. */
public final class ReadmeSection {
  private ReadmeSection() {}

  /** The lines from {@code heading} up to the next "## " section. */
  public static List<String> of(List<String> lines, String heading) {
    int start = lines.indexOf(heading);
    assertTrue(start >= 0, "README has no section " + heading);
    int end = start + 1;
    while (end < lines.size() && !lines.get(end).startsWith("## ")) {
      end++;
    }
    return lines.subList(start, end);
  }
}
