package dev.plora.data;

import dev.plora.data.DataFormatException.Reason;
import dev.plora.data.ExampleEncoder.BadLine;
import dev.plora.io.Json;
import dev.plora.text.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** Reads a JSONL file, one example a line, into a {@link Dataset}. */
final class JsonlReader {
  /** The longest line read; a longer one is refused without being held whole. */
  static final int MAX_LINE_BYTES = 64 << 20;

  private final Path file;
  private final Tokenizer tokenizer;
  private final ReadOptions options;
  private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
      .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
  private final List<Example> examples = new ArrayList<>();
  private final Map<Reason, Integer> skipped = new EnumMap<>(Reason.class);
  private DataFormat format;
  private ExampleEncoder encoder;
  private int truncated, dropped;

  private JsonlReader(Path file, Tokenizer tokenizer, ReadOptions options) {
    this.file = file;
    this.tokenizer = tokenizer;
    this.options = options;
  }

  static Dataset read(Path file, Tokenizer tokenizer, ReadOptions options) throws IOException {
    if (file == null || tokenizer == null || options == null) {
      throw new IllegalArgumentException("file, tokenizer and options: must not be null");
    }
    JsonlReader reader = new JsonlReader(file, tokenizer, options);
    if (options.format() != null) {
      reader.use(options.format());
    }
    try (InputStream in = Files.newInputStream(file)) {
      Line line = new Line(in);
      for (long n = 1; line.read(); n++) {
        try {
          reader.line(line, n);
        } catch (BadLine bad) {
          if (!options.skipBad()) {
            throw new DataFormatException(file, n, bad.reason, bad.getMessage());
          }
          reader.skipped.merge(bad.reason, 1, Integer::sum);
        }
      }
    }
    return new Dataset(reader.examples, ReadStats.of(reader.format, reader.examples, reader.truncated, reader.dropped,
        reader.skipped));
  }

  private void line(Line line, long n) throws BadLine {
    if (line.overLimit) {
      throw new BadLine(Reason.TOO_LONG, "a line of over " + (MAX_LINE_BYTES >> 20) + " MiB");
    }
    String text;
    try {
      text = utf8.decode(ByteBuffer.wrap(line.bytes, 0, line.length)).toString();
    } catch (CharacterCodingException e) {
      throw new BadLine(Reason.INVALID_JSON, "not valid UTF-8");
    }
    if (n == 1 && text.startsWith("\uFEFF")) { // a byte order mark some editors write
      text = text.substring(1);
    }
    if (text.isBlank()) {
      return;
    }
    Object value;
    try {
      value = Json.parse(text);
    } catch (Json.JsonException e) {
      throw new BadLine(Reason.INVALID_JSON, e.getMessage().replaceFirst("^invalid JSON ", ""));
    }
    if (!(value instanceof Map<?, ?>)) {
      throw new BadLine(Reason.WRONG_TYPE, "expected a JSON object, got " + ExampleEncoder.kind(value));
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> object = (Map<String, Object>) value;
    if (encoder == null) {
      DataFormat detected = DataFormat.detect(object);
      if (detected == null) {
        throw new BadLine(Reason.UNKNOWN_FORMAT, "expected the keys of one format (text; prompt and completion; "
            + "instruction, input and output; messages; input_ids), got " + object.keySet());
      }
      use(detected);
    }
    Example e;
    try {
      e = encoder.encode(object);
    } catch (RuntimeException failure) { // the tokenizer's own: not the line's fault, but say where it happened
      throw new IllegalStateException(file + ":" + n + ": the tokenizer failed: " + failure.getMessage(), failure);
    }
    if (e.scoredTokens() == 0) {
      throw new BadLine(Reason.NO_SCORED_TOKEN, "none of its " + e.length() + " tokens is scored");
    }
    if (e.length() > options.seqLen()) {
      if (!options.truncate()) {
        throw new BadLine(Reason.TOO_LONG, e.length() + " tokens, over seqLen " + options.seqLen()
            + " (truncation is off)");
      }
      truncated++;
      e = e.truncated(options.seqLen());
      if (e.scoredTokens() == 0) {
        dropped++;
        return;
      }
    }
    examples.add(e);
  }

  private void use(DataFormat f) {
    try {
      encoder = new ExampleEncoder(tokenizer, f, options.completionOnly());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
    format = f;
  }

  /** One line's bytes, without its line break, in a buffer reused from line to line. */
  private static final class Line {
    private final InputStream in;
    private final byte[] buffer = new byte[1 << 16];
    private int position, limit;
    byte[] bytes = new byte[1 << 12];
    int length;
    boolean overLimit;

    Line(InputStream in) {
      this.in = in;
    }

    /** Reads the next line; false at the end of the input. */
    boolean read() throws IOException {
      length = 0;
      overLimit = false;
      boolean any = false;
      while (true) {
        if (position == limit) {
          limit = Math.max(0, in.read(buffer));
          position = 0;
          if (limit == 0) { // the last line, without a line break
            dropCarriageReturn();
            return any;
          }
        }
        any = true;
        int end = position;
        while (end < limit && buffer[end] != '\n') {
          end++;
        }
        append(position, end);
        position = end;
        if (end < limit) {
          position++; // past the line break
          dropCarriageReturn();
          return true;
        }
      }
    }

    private void dropCarriageReturn() {
      if (length > 0 && bytes[length - 1] == '\r') {
        length--;
      }
    }

    /** Keeps buffer[from, to) up to the limit; past it only notes that the line is too long. */
    private void append(int from, int to) {
      int n = Math.min(to - from, MAX_LINE_BYTES - length);
      overLimit |= n < to - from;
      if (length + n > bytes.length) {
        bytes = Arrays.copyOf(bytes, (int) Math.min(MAX_LINE_BYTES, Math.max(2L * bytes.length, length + n)));
      }
      System.arraycopy(buffer, from, bytes, length, n);
      length += n;
    }
  }
}
