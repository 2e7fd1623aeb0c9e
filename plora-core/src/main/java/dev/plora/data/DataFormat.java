package dev.plora.data;

import java.util.Locale;
import java.util.Map;

/** The kinds of JSONL training line, each known by its keys. */
public enum DataFormat {
  /** {@code {"text"}}: plain language modelling, every token scored. */
  TEXT("text"),
  /** {@code {"prompt", "completion"}}: the completion (and EOS) scored. */
  PROMPT_COMPLETION("prompt_completion"),
  /** Stanford Alpaca's {@code {"instruction", "input", "output"}}: the output scored. */
  ALPACA("alpaca"),
  /** {@code {"messages": [{"role", "content"}, ...]}}: the assistant turns scored. */
  CHAT("chat"),
  /** {@code {"input_ids", "labels"}}: already tokenized. */
  TOKENIZED("tokenized");

  private final String id;

  DataFormat(String id) {
    this.id = id;
  }

  /** The name users write ({@code --format chat}). */
  public String id() {
    return id;
  }

  public static DataFormat fromId(String name) {
    for (DataFormat f : values()) {
      if (f.id.equals(name.toLowerCase(Locale.ROOT))) {
        return f;
      }
    }
    throw new IllegalArgumentException("format: expected one of text, prompt_completion, alpaca, chat, tokenized, got \""
        + name + "\"");
  }

  /** The format whose distinctive key a line has, or null: the first match in this order. */
  static DataFormat detect(Map<String, Object> line) {
    if (line.containsKey("messages")) {
      return CHAT;
    }
    if (line.containsKey("input_ids")) {
      return TOKENIZED;
    }
    if (line.containsKey("instruction")) {
      return ALPACA;
    }
    if (line.containsKey("prompt") || line.containsKey("completion")) {
      return PROMPT_COMPLETION;
    }
    return line.containsKey("text") ? TEXT : null;
  }
}
