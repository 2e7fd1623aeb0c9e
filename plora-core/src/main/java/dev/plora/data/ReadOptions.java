package dev.plora.data;

/**
 * How a JSONL file becomes examples.
 *
 * @param format the lines' format; null detects it from the first valid line's keys
 * @param seqLen the longest example, in tokens
 * @param truncate cut longer examples to {@code seqLen} (keeping the start) instead of refusing them
 * @param completionOnly score only the completion of prompt/completion and Alpaca lines
 * @param skipBad skip bad lines, counting them by reason, instead of failing on the first
 */
public record ReadOptions(DataFormat format, int seqLen, boolean truncate, boolean completionOnly, boolean skipBad) {
  public ReadOptions {
    if (seqLen < 2) {
      throw new IllegalArgumentException("seqLen: expected >= 2 tokens, got " + seqLen);
    }
  }

  /** Format detected, no truncation, completion only, bad lines fatal. */
  public static ReadOptions of(int seqLen) {
    return new ReadOptions(null, seqLen, false, true, false);
  }

  public ReadOptions format(DataFormat format) {
    return new ReadOptions(format, seqLen, truncate, completionOnly, skipBad);
  }

  public ReadOptions truncate(boolean truncate) {
    return new ReadOptions(format, seqLen, truncate, completionOnly, skipBad);
  }

  public ReadOptions completionOnly(boolean completionOnly) {
    return new ReadOptions(format, seqLen, truncate, completionOnly, skipBad);
  }

  public ReadOptions skipBad(boolean skipBad) {
    return new ReadOptions(format, seqLen, truncate, completionOnly, skipBad);
  }
}
