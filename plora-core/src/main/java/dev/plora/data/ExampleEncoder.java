package dev.plora.data;

import dev.plora.data.DataFormatException.Reason;
import dev.plora.text.ChatMessage;
import dev.plora.text.ChatTemplate;
import dev.plora.text.Tokenizer;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** One parsed JSONL line of a format to an {@link Example}, through a tokenizer. */
final class ExampleEncoder {
  /** Stanford Alpaca's prompts, word for word. */
  static final String ALPACA_PROMPT = "Below is an instruction that describes a task. "
      + "Write a response that appropriately completes the request.\n\n"
      + "### Instruction:\n%s\n\n### Response:\n";
  static final String ALPACA_PROMPT_WITH_INPUT = "Below is an instruction that describes a task, paired with an input "
      + "that provides further context. Write a response that appropriately completes the request.\n\n"
      + "### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n";

  /** A line that is not a usable example: the reader adds the file and line number. */
  static final class BadLine extends Exception {
    final Reason reason;

    BadLine(Reason reason, String detail) {
      super(detail, null, false, false);
      this.reason = reason;
    }
  }

  private final Tokenizer tokenizer;
  private final DataFormat format;
  private final boolean completionOnly;
  private final int eos;
  private final ChatTemplate template;

  /** Refuses a tokenizer that lacks what the format needs: an EOS id, or a chat template. */
  ExampleEncoder(Tokenizer tokenizer, DataFormat format, boolean completionOnly) {
    this.tokenizer = tokenizer;
    this.format = format;
    this.completionOnly = completionOnly;
    boolean needsEos = format == DataFormat.TEXT || format == DataFormat.PROMPT_COMPLETION || format == DataFormat.ALPACA;
    if (needsEos && tokenizer.eosId().isEmpty()) {
      throw new IllegalArgumentException("tokenizer: " + format.id() + " data ends each example with EOS, and the "
          + "tokenizer has no EOS id");
    }
    this.eos = tokenizer.eosId().orElse(-1);
    this.template = format == DataFormat.CHAT ? tokenizer.chatTemplate().orElseThrow(() -> new IllegalArgumentException(
        "tokenizer: chat data (messages) is rendered with the tokenizer's chat template, and it has none")) : null;
  }

  Example encode(Map<String, Object> line) throws BadLine {
    Example e = switch (format) {
      case TEXT -> {
        int[] ids = concat(tokenizer.ids(nonEmpty(line, "text"), true), new int[] {eos});
        yield new Example(ids, ids.clone());
      }
      case PROMPT_COMPLETION -> promptCompletion(string(line, "prompt"), nonEmpty(line, "completion"));
      case ALPACA -> {
        String instruction = nonEmpty(line, "instruction");
        String input = line.get("input") == null ? "" : string(line, "input");
        String prompt = input.isEmpty() ? String.format(ALPACA_PROMPT, instruction)
            : String.format(ALPACA_PROMPT_WITH_INPUT, instruction, input);
        yield promptCompletion(prompt, nonEmpty(line, "output"));
      }
      case CHAT -> chat(messages(line));
      case TOKENIZED -> tokenized(line);
    };
    checkRange(e.inputIds(), "input_ids", false);
    checkRange(e.labels(), "labels", true);
    return e;
  }

  private Example promptCompletion(String prompt, String completion) {
    int[] p = tokenizer.ids(prompt, true), c = tokenizer.ids(completion, false);
    int[] ids = concat(p, c, new int[] {eos});
    int[] labels = ids.clone();
    if (completionOnly) {
      Arrays.fill(labels, 0, p.length, Example.IGNORE);
    }
    return new Example(ids, labels);
  }

  /**
   * The conversation rendered whole and tokenized as Hugging Face's apply_chat_template does (no
   * special tokens added), each token scored when its text starts inside an assistant reply: from
   * where the prefix before the reply, rendered with the generation prompt, ends to where the
   * prefix through the reply ends.
   */
  private Example chat(List<ChatMessage> messages) throws BadLine {
    String full = render(messages, false);
    List<int[]> spans = new ArrayList<>();
    for (int i = 0; i < messages.size(); i++) {
      if (messages.get(i).role().equals("assistant")) {
        int start = prefixLength(full, messages.subList(0, i), true, i);
        int end = prefixLength(full, messages.subList(0, i + 1), false, i);
        spans.add(new int[] {start, end});
      }
    }
    if (spans.isEmpty()) {
      throw new BadLine(Reason.NO_SCORED_TOKEN, "the conversation has no assistant message");
    }
    Tokenizer.Encoding enc = tokenizer.encode(full, false);
    int[] ids = enc.ids(), labels = new int[ids.length];
    if (ids.length == 0) {
      throw new BadLine(Reason.EMPTY, "the conversation renders to no tokens");
    }
    for (int t = 0; t < ids.length; t++) {
      labels[t] = Example.IGNORE;
      for (int[] s : spans) {
        if (enc.starts()[t] >= s[0] && enc.starts()[t] < s[1]) {
          labels[t] = ids[t];
        }
      }
    }
    return new Example(ids, labels);
  }

  private int prefixLength(String full, List<ChatMessage> prefix, boolean generationPrompt, int message)
      throws BadLine {
    String text = render(prefix, generationPrompt);
    if (!full.startsWith(text)) {
      throw new BadLine(Reason.CHAT_TEMPLATE, "the messages " + (generationPrompt ? "before" : "up to and with")
          + " message " + message + " (assistant)" + (generationPrompt ? " with the generation prompt" : "")
          + " do not render as a prefix of the whole conversation, so its reply cannot be located");
    }
    return text.length();
  }

  private String render(List<ChatMessage> messages, boolean generationPrompt) throws BadLine {
    try {
      return template.render(messages, generationPrompt);
    } catch (RuntimeException e) { // a template's raise_exception: this conversation, not the file, is at fault
      throw new BadLine(Reason.CHAT_TEMPLATE, "rendering failed: " + e.getMessage());
    }
  }

  private static List<ChatMessage> messages(Map<String, Object> line) throws BadLine {
    List<Object> list = list(line, "messages");
    if (list.isEmpty()) {
      throw new BadLine(Reason.EMPTY, "\"messages\" is empty");
    }
    List<ChatMessage> messages = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      if (!(list.get(i) instanceof Map<?, ?> m)) {
        throw new BadLine(Reason.WRONG_TYPE, "messages[" + i + "]: expected an object, got " + kind(list.get(i)));
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> message = (Map<String, Object>) m;
      String role = string(message, "role", "messages[" + i + "].role");
      if (role.isEmpty()) {
        throw new BadLine(Reason.EMPTY, "messages[" + i + "].role is empty");
      }
      messages.add(new ChatMessage(role, string(message, "content", "messages[" + i + "].content")));
    }
    return messages;
  }

  private Example tokenized(Map<String, Object> line) throws BadLine {
    int[] ids = ints(list(line, "input_ids"), "input_ids");
    if (ids.length == 0) {
      throw new BadLine(Reason.EMPTY, "\"input_ids\" is empty");
    }
    if (line.get("labels") == null) {
      return new Example(ids, ids.clone());
    }
    int[] labels = ints(list(line, "labels"), "labels");
    if (labels.length != ids.length) {
      throw new BadLine(Reason.LENGTH_MISMATCH, labels.length + " labels for " + ids.length + " input_ids");
    }
    return new Example(ids, labels);
  }

  /** Ids in [0, vocab), and for labels also {@link Example#IGNORE}. */
  private void checkRange(int[] values, String name, boolean labels) throws BadLine {
    int vocab = tokenizer.vocabSize();
    for (int t = 0; t < values.length; t++) {
      int v = values[t];
      if ((v < 0 || v >= vocab) && !(labels && v == Example.IGNORE)) {
        throw new BadLine(Reason.ID_OUT_OF_RANGE, name + "[" + t + "]: expected " + (labels ? "-100 or " : "")
            + "an id in [0, " + vocab + "), got " + v);
      }
    }
  }

  private static int[] ints(List<Object> list, String name) throws BadLine {
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(list.get(i) instanceof BigDecimal d) || d.signum() != 0 && d.stripTrailingZeros().scale() > 0) {
        throw new BadLine(Reason.WRONG_TYPE, name + "[" + i + "]: expected an integer, got " + kind(list.get(i)));
      }
      try {
        out[i] = d.intValueExact();
      } catch (ArithmeticException e) {
        throw new BadLine(Reason.ID_OUT_OF_RANGE, name + "[" + i + "]: " + d.toPlainString() + " is not an id");
      }
    }
    return out;
  }

  private static String nonEmpty(Map<String, Object> line, String key) throws BadLine {
    String s = string(line, key);
    if (s.isEmpty()) {
      throw new BadLine(Reason.EMPTY, "\"" + key + "\" is empty");
    }
    return s;
  }

  private static String string(Map<String, Object> line, String key) throws BadLine {
    return string(line, key, "\"" + key + "\"");
  }

  private static String string(Map<String, Object> object, String key, String name) throws BadLine {
    Object v = field(object, key, name);
    if (!(v instanceof String s)) {
      throw new BadLine(Reason.WRONG_TYPE, name + ": expected a string, got " + kind(v));
    }
    return s;
  }

  @SuppressWarnings("unchecked")
  private static List<Object> list(Map<String, Object> line, String key) throws BadLine {
    Object v = field(line, key, "\"" + key + "\"");
    if (!(v instanceof List<?>)) {
      throw new BadLine(Reason.WRONG_TYPE, "\"" + key + "\": expected an array, got " + kind(v));
    }
    return (List<Object>) v;
  }

  private static Object field(Map<String, Object> object, String key, String name) throws BadLine {
    if (!object.containsKey(key)) {
      throw new BadLine(Reason.MISSING_FIELD, name + " is missing");
    }
    return object.get(key);
  }

  static String kind(Object v) {
    if (v == null) {
      return "null";
    }
    if (v instanceof String) {
      return "a string";
    }
    if (v instanceof BigDecimal d) {
      return d.toString();
    }
    if (v instanceof Boolean b) {
      return b.toString();
    }
    return v instanceof List<?> ? "an array" : "an object";
  }

  private static int[] concat(int[]... parts) {
    int n = 0;
    for (int[] p : parts) {
      n += p.length;
    }
    int[] out = new int[n];
    int at = 0;
    for (int[] p : parts) {
      System.arraycopy(p, 0, out, at, p.length);
      at += p.length;
    }
    return out;
  }
}
