package dev.plora.data;

import java.nio.file.Path;

/** A JSONL line that is not a usable example; the message names the file, the line and why. */
public final class DataFormatException extends IllegalArgumentException {
  /** Why a line was refused; {@link ReadStats#skipped} counts skipped lines by it. */
  public enum Reason {
    INVALID_JSON("invalid JSON"),
    UNKNOWN_FORMAT("no known format"),
    MISSING_FIELD("missing field"),
    WRONG_TYPE("wrong type"),
    EMPTY("empty text"),
    LENGTH_MISMATCH("labels do not match input_ids"),
    ID_OUT_OF_RANGE("id out of range"),
    CHAT_TEMPLATE("chat template"),
    NO_SCORED_TOKEN("no scored token"),
    TOO_LONG("too long");

    private final String text;

    Reason(String text) {
      this.text = text;
    }

    @Override
    public String toString() {
      return text;
    }
  }

  private final Path file;
  private final long line;
  private final Reason reason;

  public DataFormatException(Path file, long line, Reason reason, String detail) {
    super(file + ":" + line + ": " + reason + ": " + detail);
    this.file = file;
    this.line = line;
    this.reason = reason;
  }

  public Path file() {
    return file;
  }

  /** The line number, from 1. */
  public long line() {
    return line;
  }

  public Reason reason() {
    return reason;
  }
}
