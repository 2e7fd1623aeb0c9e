package dev.plora.io;

import dev.plora.backend.Backend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * The safetensors format: an 8-byte little-endian header length N; N bytes of UTF-8 JSON mapping
 * tensor names to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to
 * the data section) and an optional {@code "__metadata__"} of string → string, padded with
 * spaces; then the data section, little-endian row-major, with no holes or overlaps.
 */
public final class Safetensors {
  /** Largest header accepted, as in the reference implementation. */
  public static final long MAX_HEADER_BYTES = 100L * 1000 * 1000;
  public static final String METADATA = "__metadata__";

  private Safetensors() {}

  /**
   * Element types of the format. The 8-bit floats are stored and copied but not converted: no
   * arithmetic here reads them.
   */
  public enum Dtype {
    BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1), F8_E8M0(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4),
    F32(4), I64(8), U64(8), F64(8);

    public final int size;

    Dtype(int size) {
      this.size = size;
    }

    /** The safetensors dtype that stores a tensor dtype. */
    public static Dtype of(DType dtype) {
      return switch (dtype) {
        case F32 -> F32;
        case BF16 -> BF16;
        case F16 -> F16;
        case I32 -> I32;
      };
    }

    /** A float type this class converts to and from (F16, BF16, F32, F64). */
    public boolean isFloat() {
      return this == F16 || this == BF16 || this == F32 || this == F64;
    }

    /** The next value of this float type in {@code b} (relative get), exactly, as a double. */
    double get(ByteBuffer b) {
      return switch (this) {
        case F64 -> b.getDouble();
        case F32 -> b.getFloat();
        case F16 -> DType.f16ToFloat(b.getShort());
        case BF16 -> DType.bf16ToFloat(b.getShort());
        default -> throw new IllegalStateException(this + " is not a float type");
      };
    }

    /**
     * Puts {@code v} rounded to nearest even into {@code b} (relative put); false when a finite
     * {@code v} became infinite (out of this type's range). F16 and BF16 round through fp32, as
     * PyTorch converts doubles.
     */
    boolean put(ByteBuffer b, double v) {
      boolean finite = Double.isFinite(v);
      switch (this) {
        case F64 -> b.putDouble(v);
        case F32 -> {
          float f = (float) v;
          b.putFloat(f);
          return !finite || Float.isFinite(f);
        }
        case F16 -> {
          short h = DType.floatToF16((float) v);
          b.putShort(h);
          return !finite || (h & 0x7c00) != 0x7c00;
        }
        case BF16 -> {
          short h = DType.floatToBf16((float) v);
          b.putShort(h);
          return !finite || (h & 0x7f80) != 0x7f80;
        }
        default -> throw new IllegalStateException(this + " is not a float type");
      }
      return true;
    }
  }

  /** One tensor of a file: its place in the data section. */
  public record Entry(String name, Dtype dtype, long[] shape, long begin, long end) {
    public long elements() {
      long n = 1;
      for (long d : shape) {
        n = Math.multiplyExact(n, d);
      }
      return n;
    }

    public long bytes() {
      return end - begin;
    }

    /** The shape as rows x cols: [n] is [1, n], [a, b] itself; other ranks are refused. */
    public int[] matrixShape() {
      if (shape.length == 1) {
        return new int[] {1, Math.toIntExact(shape[0])};
      }
      if (shape.length == 2) {
        return new int[] {Math.toIntExact(shape[0]), Math.toIntExact(shape[1])};
      }
      throw new IllegalArgumentException("tensor '" + name + "' has shape " + Arrays.toString(shape)
          + "; only 1-D and 2-D tensors load as matrices");
    }
  }

  // ================================================================ reading

  /** An open file: header validated up front, tensor data memory-mapped on demand. */
  public static final class Reader implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private Reader(Path file, FileChannel channel, long dataStart, Map<String, Entry> entries,
        Map<String, String> metadata) {
      this.file = file;
      this.channel = channel;
      this.dataStart = dataStart;
      this.entries = entries;
      this.metadata = metadata;
    }

    public Path file() {
      return file;
    }

    /** The tensors in file order of their data. */
    public List<Entry> entries() {
      return List.copyOf(entries.values());
    }

    public Map<String, String> metadata() {
      return metadata;
    }

    public Entry entry(String name) {
      Entry e = entries.get(name);
      if (e == null) {
        throw new IllegalArgumentException(file + ": no tensor named '" + name + "'");
      }
      return e;
    }

    /**
     * The raw little-endian bytes of a tensor, memory-mapped (read-only). One mapping holds less
     * than 2 GiB: read larger tensors in ranges.
     */
    public ByteBuffer data(String name) throws IOException {
      Entry e = entry(name);
      if (e.bytes() > Integer.MAX_VALUE) {
        throw new IllegalArgumentException(file + ": tensor '" + name + "' holds " + e.bytes()
            + " bytes, more than one buffer maps (2 GiB): read it in ranges");
      }
      return data(name, 0, (int) e.bytes());
    }

    /** Bytes {@code [offset, offset + length)} of a tensor's data, memory-mapped (read-only). */
    public ByteBuffer data(String name, long offset, int length) throws IOException {
      Entry e = entry(name);
      if (offset < 0 || length < 0 || offset > e.bytes() - length) {
        throw new IllegalArgumentException(file + ": tensor '" + name + "': bytes [" + offset + ", " + (offset + length)
            + ") are not within its " + e.bytes());
      }
      return channel.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin() + offset, length)
          .order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A floating-point tensor's values as fp32, row-major. */
    public float[] floats(String name) throws IOException {
      Entry e = entry(name);
      if (e.elements() > Integer.MAX_VALUE) {
        throw new IllegalArgumentException(file + ": tensor '" + name + "' is too large for one Java array");
      }
      float[] out = new float[(int) e.elements()];
      floats(name, 0, FloatBuffer.wrap(out));
      return out;
    }

    /** Values {@code [first, first + out.remaining())} of a floating-point tensor as fp32, put into {@code out}. */
    public void floats(String name, long first, FloatBuffer out) throws IOException {
      Entry e = entry(name);
      if (!e.dtype().isFloat()) {
        throw new IllegalArgumentException(file + ": tensor '" + name + "' is " + e.dtype() + ", not a float type");
      }
      ByteBuffer b = data(name, first * e.dtype().size, Math.toIntExact((long) out.remaining() * e.dtype().size));
      while (b.hasRemaining()) {
        out.put((float) e.dtype().get(b));
      }
    }

    /** A 1-D or 2-D float tensor loaded onto a backend in {@code dtype} (caller closes it). */
    public Tensor load(Backend backend, String name, DType dtype) throws IOException {
      int[] rc = entry(name).matrixShape();
      return backend.fromArray(floats(name), rc[0], rc[1], dtype);
    }

    @Override
    public void close() throws IOException {
      channel.close();
    }
  }

  /** Opens and validates a file; a malformed one throws {@link SafetensorsFormatException}. */
  public static Reader open(Path file) throws IOException {
    FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
    try {
      long size = channel.size();
      String where = file.toString();
      if (size < 8) {
        throw bad(where, "truncated: " + size + " bytes, fewer than the 8-byte header length");
      }
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(channel, lenBuf, 0);
      long n = lenBuf.flip().getLong();
      if (n < 0 || n > MAX_HEADER_BYTES) {
        throw bad(where, "header length " + Long.toUnsignedString(n) + " is over the limit of " + MAX_HEADER_BYTES
            + " bytes");
      }
      if (8 + n > size) {
        throw bad(where, "header length " + n + " runs past the end of the file (" + size + " bytes)");
      }
      ByteBuffer header = ByteBuffer.allocate((int) n);
      readFully(channel, header, 8);
      String json;
      try {
        json = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT).decode(header.flip()).toString();
      } catch (CharacterCodingException e) {
        throw bad(where, "header is not valid UTF-8 (" + e.getMessage() + ")");
      }
      Object parsed;
      try {
        parsed = Json.parse(json);
      } catch (Json.JsonException e) {
        throw bad(where, "header: " + e.getMessage());
      }
      if (!(parsed instanceof Map<?, ?> top)) {
        throw bad(where, "header: expected a JSON object at the top level");
      }
      Map<String, String> metadata = Map.of();
      List<Entry> list = new ArrayList<>();
      for (Map.Entry<?, ?> e : top.entrySet()) {
        String name = (String) e.getKey();
        String lone = loneSurrogate("tensor name", name);
        if (lone != null) {
          throw bad(where, lone);
        }
        if (name.equals(METADATA)) {
          metadata = metadata(where, e.getValue());
        } else {
          list.add(entry(where, name, e.getValue()));
        }
      }
      long dataLength = size - 8 - n;
      list.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
      long expected = 0;
      for (Entry e : list) {
        if (e.begin() != expected) {
          throw bad(where, "tensor '" + e.name() + "': data_offsets [" + e.begin() + ", " + e.end() + "] "
              + (e.begin() > expected ? "leave a hole after byte " + expected : "overlap the previous tensor, which ends at "
              + expected));
        }
        expected = e.end();
      }
      if (expected != dataLength) {
        throw bad(where, "the tensors cover " + expected + " bytes but the data section has " + dataLength);
      }
      Map<String, Entry> entries = new LinkedHashMap<>();
      list.forEach(e -> entries.put(e.name(), e));
      return new Reader(file, channel, 8 + n, Collections.unmodifiableMap(entries), metadata);
    } catch (RuntimeException | IOException e) {
      channel.close();
      throw e;
    }
  }

  private static Entry entry(String where, String name, Object value) {
    String at = "tensor '" + name + "'";
    if (!(value instanceof Map<?, ?> info)) {
      throw bad(where, at + ": expected an object with dtype, shape and data_offsets");
    }
    for (Object key : info.keySet()) {
      if (!Set.of("dtype", "shape", "data_offsets").contains(key)) {
        throw bad(where, at + ": unknown field '" + key + "'");
      }
    }
    Object dt = info.get("dtype");
    if (!(dt instanceof String dtypeName)) {
      throw bad(where, at + ": dtype missing or not a string");
    }
    Dtype dtype;
    try {
      dtype = Dtype.valueOf(dtypeName);
    } catch (IllegalArgumentException e) {
      throw bad(where, at + ": unknown dtype '" + dtypeName + "'");
    }
    long[] shape = longs(where, at + ": shape", info.get("shape"), -1);
    long[] offsets = longs(where, at + ": data_offsets", info.get("data_offsets"), 2);
    if (offsets[0] > offsets[1]) {
      throw bad(where, at + ": data_offsets [" + offsets[0] + ", " + offsets[1] + "] end before they begin");
    }
    long bytes;
    try {
      long elements = 1;
      for (long d : shape) {
        elements = Math.multiplyExact(elements, d);
      }
      bytes = Math.multiplyExact(elements, dtype.size);
    } catch (ArithmeticException e) {
      throw bad(where, at + ": shape " + Arrays.toString(shape) + " is too large");
    }
    if (bytes != offsets[1] - offsets[0]) {
      throw bad(where, at + ": shape " + Arrays.toString(shape) + " of " + dtype + " needs " + bytes
          + " bytes but data_offsets [" + offsets[0] + ", " + offsets[1] + "] hold " + (offsets[1] - offsets[0]));
    }
    return new Entry(name, dtype, shape, offsets[0], offsets[1]);
  }

  private static long[] longs(String where, String what, Object value, int length) {
    if (!(value instanceof List<?> list)) {
      throw bad(where, what + ": missing or not an array");
    }
    if (length >= 0 && list.size() != length) {
      throw bad(where, what + ": expected " + length + " integers, got " + list.size());
    }
    long[] out = new long[list.size()];
    for (int i = 0; i < out.length; i++) {
      Object v = list.get(i);
      if (!(v instanceof BigDecimal d) || d.signum() < 0 || d.stripTrailingZeros().scale() > 0
          || d.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
        throw bad(where, what + ": element " + i + " (" + v + ") is not a non-negative integer");
      }
      out[i] = d.longValueExact();
    }
    return out;
  }

  private static Map<String, String> metadata(String where, Object value) {
    if (!(value instanceof Map<?, ?> map)) {
      throw bad(where, METADATA + ": expected an object of strings");
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<?, ?> e : map.entrySet()) {
      if (!(e.getValue() instanceof String s)) {
        throw bad(where, METADATA + ": value of '" + e.getKey() + "' is not a string");
      }
      String lone = loneSurrogate(METADATA + ": metadata key", (String) e.getKey());
      lone = lone != null ? lone : loneSurrogate(METADATA + ": metadata value", s);
      if (lone != null) {
        throw bad(where, lone);
      }
      out.put((String) e.getKey(), s);
    }
    return Collections.unmodifiableMap(out);
  }

  /**
   * What is wrong with a string holding a lone surrogate, or null. A JSON escape can spell one (the
   * parser refuses it in keys, not in values), but UTF-8 cannot encode it: written back it would
   * turn into '?' (and two names into one).
   */
  static String loneSurrogate(String what, String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        return what + " \"" + escaped(s, i) + "\": lone surrogate \\u" + Integer.toHexString(c) + " at character " + i
            + " (not Unicode: UTF-8 cannot hold it)";
      }
    }
    return null;
  }

  /** {@code s} with surrogates, quotes and control characters escaped; around character {@code at} when long. */
  private static String escaped(String s, int at) {
    boolean whole = s.length() <= 100;
    int from = whole ? 0 : Math.max(0, at - 40), to = whole ? s.length() : Math.min(s.length(), at + 40);
    StringBuilder sb = new StringBuilder(from > 0 ? "…" : "");
    for (int i = from; i < to; i++) {
      char c = s.charAt(i);
      if (Character.isSurrogate(c) || c < 0x20 || c == '"' || c == '\\') {
        sb.append(String.format("\\u%04x", (int) c));
      } else {
        sb.append(c);
      }
    }
    return sb.append(to < s.length() ? "…" : "").toString();
  }

  private static SafetensorsFormatException bad(String where, String what) {
    return new SafetensorsFormatException(where + ": " + what);
  }

  private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
    while (buffer.hasRemaining()) {
      int n = channel.read(buffer, position + buffer.position());
      if (n < 0) {
        throw new IOException("unexpected end of file");
      }
    }
  }

  // ================================================================ writing

  /** A tensor to write: name, dtype and shape (data is given later, in this order). */
  public record Spec(String name, Dtype dtype, long[] shape) {
    public long elements() {
      long n = 1;
      for (long d : shape) {
        n = Math.multiplyExact(n, d);
      }
      return n;
    }

    public long bytes() {
      return Math.multiplyExact(elements(), dtype.size);
    }
  }

  /**
   * Streams a file: the header is fixed from the specs at creation, then each tensor's data is
   * written in spec order, whole or in parts, so memory holds at most one tensor (or one part) at
   * a time. The file appears under its name only at {@link #commit()} (temporary file, fsync,
   * atomic rename); closing without a commit removes the temporary file and leaves any existing
   * file untouched.
   */
  public static final class Writer implements AutoCloseable {
    /** Bytes converted at a time by the value-converting writes. */
    private static final int CONVERT_BYTES = 1 << 20;
    private final AtomicFiles.Temp tmp;
    private final List<Spec> specs;
    private int next;
    private long written; // bytes of specs[next] written so far
    private final CRC32C dataCrc = new CRC32C();

    private Writer(AtomicFiles.Temp tmp, List<Spec> specs) {
      this.tmp = tmp;
      this.specs = specs;
    }

    /** The tensor the next bytes go to, checked to take {@code bytes} more. */
    private Spec current(long bytes) {
      if (next >= specs.size()) {
        throw new IllegalStateException("all " + specs.size() + " tensors are written");
      }
      Spec spec = specs.get(next);
      if (bytes > spec.bytes() - written) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "': " + bytes + " more bytes would run past its "
            + spec.bytes() + " (" + written + " written)");
      }
      return spec;
    }

    /** The next tensor, none of it written yet. */
    private Spec whole() {
      Spec spec = current(0);
      if (written != 0) {
        throw new IllegalStateException("tensor '" + spec.name() + "' is partly written (" + written + " of "
            + spec.bytes() + " bytes): append the rest");
      }
      return spec;
    }

    /** The next tensor's data, little-endian, exactly its byte size. */
    public void write(ByteBuffer data) throws IOException {
      Spec spec = whole();
      if (data.remaining() != spec.bytes()) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "': expected " + spec.bytes() + " bytes, got "
            + data.remaining());
      }
      append(data);
    }

    /**
     * The next bytes of the current tensor (little-endian), which is complete once all its bytes
     * are written; an empty part completes an empty tensor.
     */
    public void append(ByteBuffer part) throws IOException {
      Spec spec = current(part.remaining());
      dataCrc.update(part.duplicate());
      while (part.hasRemaining()) {
        written += tmp.channel().write(part);
      }
      if (written == spec.bytes()) {
        next++;
        written = 0;
      }
    }

    /** The CRC-32C of all tensor data written so far, for formats that store a checksum of it. */
    public int dataCrc32c() {
      return (int) dataCrc.getValue();
    }

    /** The next tensor's values, converted to its dtype (a float type) as {@link #append(FloatBuffer)} does. */
    public void write(float[] values) throws IOException {
      Spec spec = whole();
      if (values.length != spec.elements()) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "': expected " + spec.elements()
            + " values, got " + values.length);
      }
      append(FloatBuffer.wrap(values));
    }

    /**
     * The next values of the current tensor, rounded to nearest even into its dtype (a float
     * type). A finite value that the dtype cannot hold (it would be written as ±Inf) is refused,
     * naming the tensor and the element; NaN and infinities stay what they are.
     */
    public void append(FloatBuffer values) throws IOException {
      FloatBuffer in = values.duplicate();
      appendValues(in.remaining(), () -> in.get());
      values.position(values.limit());
    }

    /** As {@link #append(FloatBuffer)}, from doubles. */
    public void append(DoubleBuffer values) throws IOException {
      DoubleBuffer in = values.duplicate();
      appendValues(in.remaining(), () -> in.get());
      values.position(values.limit());
    }

    private void appendValues(int count, java.util.function.DoubleSupplier values) throws IOException {
      Spec spec = current(0);
      if (!spec.dtype().isFloat()) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "' is " + spec.dtype() + ", not a float type");
      }
      current((long) count * spec.dtype().size);
      if (count == 0) {
        append(ByteBuffer.allocate(0));
        return;
      }
      int perPart = CONVERT_BYTES / spec.dtype().size;
      ByteBuffer part = ByteBuffer.allocate(Math.min(count, perPart) * spec.dtype().size).order(ByteOrder.LITTLE_ENDIAN);
      for (int done = 0; done < count; ) {
        part.clear();
        long first = written / spec.dtype().size;
        for (int n = Math.min(count - done, perPart), i = 0; i < n; i++, done++) {
          double v = values.getAsDouble();
          if (!spec.dtype().put(part, v)) {
            throw overflow(spec, first + i, v);
          }
        }
        append(part.flip());
      }
    }

    /**
     * Writes the next tensor as a copy of {@code in}'s tensor {@code name} (of the same shape),
     * reading at most {@code chunkBytes} at a time, so a tensor of any size streams: bit for bit
     * when the dtypes agree, else converted between float types as {@link #append(FloatBuffer)}
     * converts.
     */
    public void copy(Reader in, String name, long chunkBytes) throws IOException {
      Spec spec = whole();
      Entry e = in.entry(name);
      if (!Arrays.equals(e.shape(), spec.shape())) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "' has shape " + Arrays.toString(spec.shape())
            + ", cannot copy '" + name + "' of shape " + Arrays.toString(e.shape()));
      }
      if (chunkBytes <= 0) {
        throw new IllegalArgumentException("chunkBytes: expected > 0, got " + chunkBytes);
      }
      if (e.bytes() == 0) {
        append(ByteBuffer.allocate(0));
      } else if (e.dtype() == spec.dtype()) {
        long step = Math.min(chunkBytes, Integer.MAX_VALUE);
        for (long offset = 0; offset < e.bytes(); offset += step) {
          append(in.data(name, offset, (int) Math.min(step, e.bytes() - offset)));
        }
      } else if (e.dtype().isFloat() && spec.dtype().isFloat()) {
        Dtype from = e.dtype(), to = spec.dtype();
        long step = Math.max(1, Math.min(chunkBytes, Integer.MAX_VALUE) / Math.max(from.size, to.size));
        ByteBuffer part = ByteBuffer.allocate((int) (Math.min(step, e.elements()) * to.size))
            .order(ByteOrder.LITTLE_ENDIAN);
        for (long first = 0; first < e.elements(); first += step) {
          int n = (int) Math.min(step, e.elements() - first);
          ByteBuffer src = in.data(name, first * from.size, n * from.size);
          part.clear();
          for (int i = 0; i < n; i++) {
            double v = from.get(src);
            if (!to.put(part, v)) {
              throw overflow(spec, first + i, v);
            }
          }
          append(part.flip());
        }
      } else {
        throw new IllegalArgumentException("tensor '" + spec.name() + "': cannot convert " + e.dtype() + " to "
            + spec.dtype());
      }
    }

    private static IllegalArgumentException overflow(Spec spec, long element, double v) {
      return new IllegalArgumentException("tensor '" + spec.name() + "': element " + element + " = " + v
          + " is finite but would be infinite in " + spec.dtype() + " (out of its range)");
    }

    /** Forces the data to disk and renames the file into place. */
    public void commit() throws IOException {
      if (next != specs.size()) {
        throw new IllegalStateException((specs.size() - next) + " tensors are still unwritten");
      }
      tmp.publish();
    }

    @Override
    public void close() throws IOException {
      tmp.close();
    }
  }

  /**
   * Starts a file at {@code target}. Refuses an existing target unless {@code overwrite}; names
   * must be unique, valid Unicode and not {@value #METADATA}.
   */
  public static Writer create(Path target, List<Spec> specs, Map<String, String> metadata, boolean overwrite)
      throws IOException {
    AtomicFiles.requireWritable(target, overwrite);
    Map<String, Object> header = new LinkedHashMap<>();
    if (metadata != null && !metadata.isEmpty()) {
      for (Map.Entry<String, String> m : metadata.entrySet()) {
        String lone = loneSurrogate("metadata key", m.getKey());
        lone = lone != null ? lone : loneSurrogate("metadata value", m.getValue());
        if (lone != null) {
          throw new IllegalArgumentException(lone);
        }
      }
      header.put(METADATA, new LinkedHashMap<>(metadata));
    }
    long offset = 0;
    for (Spec s : specs) {
      if (s.name().equals(METADATA) || header.containsKey(s.name())) {
        throw new IllegalArgumentException("tensor name '" + s.name() + "' is reserved or repeated");
      }
      String lone = loneSurrogate("tensor name", s.name());
      if (lone != null) {
        throw new IllegalArgumentException(lone);
      }
      for (long d : s.shape()) {
        if (d < 0) {
          throw new IllegalArgumentException("tensor '" + s.name() + "': negative dimension in "
              + Arrays.toString(s.shape()));
        }
      }
      List<Object> shape = new ArrayList<>();
      for (long d : s.shape()) {
        shape.add(d);
      }
      Map<String, Object> info = new LinkedHashMap<>();
      info.put("dtype", s.dtype().name());
      info.put("shape", shape);
      info.put("data_offsets", List.of(offset, offset + s.bytes()));
      header.put(s.name(), info);
      offset += s.bytes();
    }
    byte[] json = Json.write(header).getBytes(StandardCharsets.UTF_8);
    int padded = (json.length + 7) / 8 * 8;
    ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
    head.putLong(padded).put(json);
    while (head.hasRemaining()) {
      head.put((byte) ' ');
    }
    AtomicFiles.Temp tmp = AtomicFiles.createTemp(target);
    try {
      head.flip();
      while (head.hasRemaining()) {
        tmp.channel().write(head);
      }
      return new Writer(tmp, List.copyOf(specs));
    } catch (IOException | RuntimeException e) {
      tmp.close();
      throw e;
    }
  }

  /** Writes float tensors (name → shape and values) in one go, atomically. */
  public static void writeFloats(Path target, Map<String, float[]> values, Map<String, long[]> shapes, Dtype dtype,
      Map<String, String> metadata, boolean overwrite) throws IOException {
    List<Spec> specs = new ArrayList<>();
    for (String name : values.keySet()) {
      specs.add(new Spec(name, dtype, shapes.get(name)));
    }
    try (Writer w = create(target, specs, metadata, overwrite)) {
      for (String name : values.keySet()) {
        w.write(values.get(name));
      }
      w.commit();
    }
  }
}
