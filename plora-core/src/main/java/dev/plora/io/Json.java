package dev.plora.io;

import com.fasterxml.jackson.core.ErrorReportConfiguration;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonFactoryBuilder;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.PrettyPrinter;
import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.io.SerializedString;
import com.fasterxml.jackson.core.util.Instantiatable;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;
import com.fasterxml.jackson.databind.util.RawValue;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * JSON for the file formats here (safetensors headers, adapter configs, checkpoint metadata,
 * reports), through Jackson configured in this one place, so that every reader shares its limits.
 * Parsed objects become {@code LinkedHashMap<String,Object>}, arrays {@code List<Object>}, numbers
 * {@link BigDecimal} (exact), and {@code true/false/null} Boolean or null. Duplicate keys, trailing
 * data and anything else outside RFC 8259 are errors that name the character offset and quote at
 * most {@value #EXCERPT_CHARS} characters of the input.
 *
 * <p>A number may be at most {@value #MAX_NUMBER_CHARS} characters long (sign, digits, fraction
 * and exponent), refused before it is converted: converting digits to a BigDecimal takes time
 * quadratic in their count (a million digits, some 20 s), and a header may be 100 MB. Every number
 * a writer produces fits many times over: 64-bit integers have at most 20 digits, shortest
 * round-trip doubles at most 24 characters. Containers nest at most {@value #MAX_DEPTH} deep.
 */
public final class Json {
  /** The longest number accepted, in characters (sign, digits, fraction and exponent). */
  public static final int MAX_NUMBER_CHARS = 256;
  /** The deepest nesting of arrays and objects accepted. */
  public static final int MAX_DEPTH = 64;
  /** How much of an offending token a message quotes. */
  private static final int EXCERPT_CHARS = 40;
  /** A quotation in a Jackson message (which quotes a duplicate key whole). */
  private static final Pattern QUOTED = Pattern.compile("'[^']*'");
  private static final Pattern NUMBER = Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?");

  private static final JsonFactory FACTORY = new JsonFactoryBuilder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxNumberLength(MAX_NUMBER_CHARS)
          .maxNestingDepth(MAX_DEPTH)
          // strings and names are bounded by each format's size limit (a header may be 100 MB)
          .maxStringLength(Integer.MAX_VALUE)
          .maxNameLength(Integer.MAX_VALUE)
          .build())
      .errorReportConfiguration(ErrorReportConfiguration.builder()
          .maxErrorTokenLength(EXCERPT_CHARS)
          .maxRawContentLength(EXCERPT_CHARS)
          .build())
      .characterEscapes(new Escapes())
      .build();

  /** Writes doubles as the formats here always have: integral values below 1e15 as integers, NaN and ±Inf refused. */
  private static final ObjectMapper MAPPER = JsonMapper.builder(FACTORY)
      .addModule(new SimpleModule("plora-numbers")
          .addSerializer(Double.class, new DoubleSerializer())
          .addSerializer(Float.class, new FloatSerializer()))
      .build();

  private Json() {}

  /** A JSON error with the offset it was found at. */
  public static final class JsonException extends IllegalArgumentException {
    JsonException(String message) {
      super(message);
    }
  }

  // ---------------------------------------------------------------- reading

  /**
   * The text of a small JSON file (a config): at most {@code maxBytes} by its size, before reading,
   * and strict UTF-8; {@code what} names it in the refusal ("an adapter config").
   */
  public static String readSmallFile(Path file, long maxBytes, String what) throws IOException {
    long size = Files.size(file);
    if (size > maxBytes) {
      throw new IllegalArgumentException(file + ": " + size + " bytes, over the limit of " + maxBytes + " for " + what);
    }
    try {
      return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(Files.readAllBytes(file)))
          .toString();
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(file + ": not valid UTF-8 (" + e.getMessage() + ")");
    }
  }

  /** Parses one JSON value filling the whole text; throws {@link JsonException} saying what and where. */
  public static Object parse(String text) {
    try (JsonParser p = FACTORY.createParser(text)) {
      try {
        if (p.nextToken() == null) {
          throw error(p.currentLocation(), "unexpected end of input");
        }
        Object value = value(p);
        if (p.nextToken() != null) {
          throw error(p.currentTokenLocation(), "unexpected data after the JSON value");
        }
        return value;
      } catch (StreamConstraintsException e) { // carries no location: it is that of the token that broke the limit
        int at = (int) p.currentTokenLocation().getCharOffset();
        throw error(at, overLimit(text, at, e));
      } catch (JsonProcessingException e) {
        JsonLocation at = e.getLocation() != null ? e.getLocation() : p.currentLocation();
        throw error(at, shortened(e.getOriginalMessage()));
      }
    } catch (IOException e) { // a String source has no I/O
      throw new UncheckedIOException(e);
    }
  }

  /** The value at the parser's current token, its tokens consumed. */
  private static Object value(JsonParser p) throws IOException {
    JsonToken token = p.currentToken();
    if (token == null) {
      throw error(p.currentLocation(), "unexpected end of input");
    }
    switch (token) {
      case START_OBJECT -> {
        Map<String, Object> map = new LinkedHashMap<>();
        for (String key = p.nextFieldName(); key != null; key = p.nextFieldName()) {
          p.nextToken();
          map.put(key, value(p));
        }
        return map;
      }
      case START_ARRAY -> {
        List<Object> list = new ArrayList<>();
        while (p.nextToken() != JsonToken.END_ARRAY) {
          list.add(value(p));
        }
        return list;
      }
      case VALUE_STRING -> {
        return p.getText();
      }
      case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> {
        return number(p);
      }
      case VALUE_TRUE -> {
        return Boolean.TRUE;
      }
      case VALUE_FALSE -> {
        return Boolean.FALSE;
      }
      case VALUE_NULL -> {
        return null;
      }
      default -> throw error(p.currentTokenLocation(), "unexpected " + token);
    }
  }

  /** The number at the parser's current token, its whole text within the limit before it is converted. */
  private static BigDecimal number(JsonParser p) throws IOException {
    // Jackson's limit counts digits only; this one, as always here, the sign, point and exponent too
    if (p.getTextLength() > MAX_NUMBER_CHARS) {
      throw error(p.currentTokenLocation(), numberTooLong(p.getTextLength(), p.getText()));
    }
    try {
      return p.getDecimalValue();
    } catch (NumberFormatException e) { // an exponent beyond BigDecimal's int scale
      throw error(p.currentTokenLocation(), "number " + excerpt(p.getText()) + " is out of range");
    }
  }

  /** Which {@link StreamReadConstraints} limit the token at {@code at} broke, by its first character. */
  private static String overLimit(String text, int at, StreamConstraintsException e) {
    char c = at < text.length() ? text.charAt(at) : '\0';
    if (c == '-' || (c >= '0' && c <= '9')) {
      int end = at;
      while (end < text.length() && "+-.0123456789eE".indexOf(text.charAt(end)) >= 0) {
        end++;
      }
      return numberTooLong(end - at, text.substring(at, Math.min(end, at + EXCERPT_CHARS + 1)));
    }
    if (c == '[' || c == '{') {
      return "nested deeper than " + MAX_DEPTH + " levels";
    }
    return shortened(e.getOriginalMessage());
  }

  private static String numberTooLong(int length, String start) {
    return "number of " + length + " characters is over the limit of " + MAX_NUMBER_CHARS + ": " + excerpt(start);
  }

  private static JsonException error(JsonLocation at, String what) {
    return error(at.getCharOffset(), what);
  }

  private static JsonException error(long offset, String what) {
    return new JsonException("invalid JSON at offset " + offset + ": " + what);
  }

  /** A Jackson message, when long, with each long quotation cut to its start, and at most two lines long in all. */
  private static String shortened(String message) {
    if (message.length() <= 4 * EXCERPT_CHARS) {
      return message;
    }
    String cut = QUOTED.matcher(message).replaceAll(m -> Matcher.quoteReplacement(
        m.group().length() <= EXCERPT_CHARS + 2 ? m.group() : m.group().substring(0, EXCERPT_CHARS + 1) + "...'"));
    return cut.length() <= 4 * EXCERPT_CHARS ? cut : cut.substring(0, 4 * EXCERPT_CHARS) + "...";
  }

  /** The start of {@code s}, short enough to quote in a message. */
  private static String excerpt(String s) {
    return s.length() <= EXCERPT_CHARS ? s : s.substring(0, EXCERPT_CHARS) + "...";
  }

  // ---------------------------------------------------------------- writing

  /** JSON on one line, {@code ", "} between items and {@code ": "} after keys. */
  public static String write(Object value) {
    return write(value, 0);
  }

  /**
   * JSON with the outer {@code lineLevels} levels of arrays and objects one item per line,
   * indented two spaces a level, and deeper ones on one line (reports: one result a line).
   */
  public static String write(Object value, int lineLevels) {
    try {
      return MAPPER.writer(new Layout(lineLevels)).writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("cannot write as JSON: " + e.getOriginalMessage(), e);
    }
  }

  /**
   * {@code v} printed with a printf {@code format} such as {@code "%.4f"} or {@code "%.6g"}, as a
   * JSON number for {@link #write}; null (JSON null) when v is NaN or infinite.
   */
  public static Object number(double v, String format) {
    if (!Double.isFinite(v)) {
      return null;
    }
    String text = String.format(Locale.ROOT, format, v);
    if (!NUMBER.matcher(text).matches()) {
      throw new IllegalArgumentException("format: \"" + format + "\" printed " + text + ", not a JSON number");
    }
    return new RawValue(text);
  }

  private static final class DoubleSerializer extends StdSerializer<Double> {
    DoubleSerializer() {
      super(Double.class);
    }

    @Override
    public void serialize(Double value, JsonGenerator g, SerializerProvider provider) throws IOException {
      writeDouble(value, g);
    }
  }

  private static final class FloatSerializer extends StdSerializer<Float> {
    FloatSerializer() {
      super(Float.class);
    }

    @Override
    public void serialize(Float value, JsonGenerator g, SerializerProvider provider) throws IOException {
      writeDouble(value.doubleValue(), g);
    }
  }

  private static void writeDouble(double d, JsonGenerator g) throws IOException {
    if (!Double.isFinite(d)) {
      throw new IllegalArgumentException("JSON has no " + d);
    }
    if (d == Math.rint(d) && Math.abs(d) < 1e15) {
      g.writeNumber((long) d);
    } else {
      g.writeNumber(d);
    }
  }

  /**
   * Escapes strings as the files written before: {@code \" \\ \n \r \t}, other control characters
   * as lowercase {@code \}{@code u00xx}; a checkpoint's checksum covers its metadata's JSON bytes.
   */
  private static final class Escapes extends CharacterEscapes {
    private final int[] codes = standardAsciiEscapesForJSON();

    Escapes() {
      for (int c = 0; c < 0x20; c++) {
        if (c != '\n' && c != '\r' && c != '\t') {
          codes[c] = ESCAPE_CUSTOM;
        }
      }
    }

    @Override
    public int[] getEscapeCodesForAscii() {
      return codes;
    }

    @Override
    public SerializableString getEscapeSequence(int c) {
      return c < 0x20 ? new SerializedString(String.format("\\u%04x", c)) : null;
    }
  }

  /**
   * The layout of every JSON file written here: {@code ", "} between items, {@code ": "} after
   * keys, and the outer {@code lineLevels} levels one item per line.
   */
  private static final class Layout implements PrettyPrinter, Instantiatable<Layout> {
    private final int lineLevels;
    private int depth;

    Layout(int lineLevels) {
      this.lineLevels = lineLevels;
    }

    @Override
    public Layout createInstance() {
      return new Layout(lineLevels);
    }

    @Override
    public void writeRootValueSeparator(JsonGenerator g) throws IOException {
      g.writeRaw('\n');
    }

    @Override
    public void writeStartObject(JsonGenerator g) throws IOException {
      g.writeRaw('{');
      depth++;
    }

    @Override
    public void beforeObjectEntries(JsonGenerator g) throws IOException {
      lineBreak(g, "");
    }

    @Override
    public void writeObjectFieldValueSeparator(JsonGenerator g) throws IOException {
      g.writeRaw(": ");
    }

    @Override
    public void writeObjectEntrySeparator(JsonGenerator g) throws IOException {
      g.writeRaw(',');
      lineBreak(g, " ");
    }

    @Override
    public void writeEndObject(JsonGenerator g, int entries) throws IOException {
      end(g, entries, '}');
    }

    @Override
    public void writeStartArray(JsonGenerator g) throws IOException {
      g.writeRaw('[');
      depth++;
    }

    @Override
    public void beforeArrayValues(JsonGenerator g) throws IOException {
      lineBreak(g, "");
    }

    @Override
    public void writeArrayValueSeparator(JsonGenerator g) throws IOException {
      g.writeRaw(',');
      lineBreak(g, " ");
    }

    @Override
    public void writeEndArray(JsonGenerator g, int values) throws IOException {
      end(g, values, ']');
    }

    /** A new line at the current depth when it is laid out in lines, else {@code inline}. */
    private void lineBreak(JsonGenerator g, String inline) throws IOException {
      g.writeRaw(depth <= lineLevels ? "\n" + "  ".repeat(depth) : inline);
    }

    private void end(JsonGenerator g, int items, char close) throws IOException {
      depth--;
      if (items > 0 && depth < lineLevels) {
        g.writeRaw("\n" + "  ".repeat(depth));
      }
      g.writeRaw(close);
    }
  }
}
