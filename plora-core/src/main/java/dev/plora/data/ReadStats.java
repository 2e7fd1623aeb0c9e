package dev.plora.data;

import dev.plora.data.DataFormatException.Reason;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * What reading a file gave: the examples kept and their tokens, the examples cut to the sequence
 * length, those that truncation left with nothing to score (dropped), and the bad lines skipped,
 * by reason.
 *
 * @param format the file's format (null when no line had one)
 * @param scoredTokens tokens the loss scores ({@link Example#scoredTokens})
 */
public record ReadStats(DataFormat format, int examples, long tokens, long scoredTokens, int truncated,
    int droppedByTruncation, Map<Reason, Integer> skipped) {

  public ReadStats {
    Map<Reason, Integer> copy = new EnumMap<>(Reason.class);
    copy.putAll(skipped);
    skipped = Collections.unmodifiableMap(copy);
  }

  /** The counts of some examples, with nothing truncated or skipped. */
  static ReadStats of(DataFormat format, List<Example> examples) {
    return of(format, examples, 0, 0, Map.of());
  }

  static ReadStats of(DataFormat format, List<Example> examples, int truncated, int dropped,
      Map<Reason, Integer> skipped) {
    long tokens = 0, scored = 0;
    for (Example e : examples) {
      tokens += e.length();
      scored += e.scoredTokens();
    }
    return new ReadStats(format, examples.size(), tokens, scored, truncated, dropped, skipped);
  }

  /** Bad lines skipped, all reasons together. */
  public int skippedLines() {
    return skipped.values().stream().mapToInt(Integer::intValue).sum();
  }

  /** One line for a log: "120 examples (chat), 3,456 tokens, 1,234 scored; skipped 2: 1 invalid JSON, 1 too long". */
  public String summary() {
    StringBuilder s = new StringBuilder(String.format("%,d examples%s, %,d tokens, %,d scored", examples,
        format == null ? "" : " (" + format.id() + ")", tokens, scoredTokens));
    if (truncated > 0) {
      s.append(String.format("; %,d truncated", truncated));
      if (droppedByTruncation > 0) {
        s.append(String.format(", %,d of them dropped with nothing left to score", droppedByTruncation));
      }
    }
    if (!skipped.isEmpty()) {
      s.append(String.format("; skipped %,d: ", skippedLines())).append(skipped.entrySet().stream()
          .map(e -> e.getValue() + " " + e.getKey()).collect(Collectors.joining(", ")));
    }
    return s.toString();
  }
}
