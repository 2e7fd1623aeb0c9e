package dev.plora.io;

import dev.plora.backend.Backend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
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

  /** Element types of the format. */
  public enum Dtype {
    BOOL(1), U8(1), I8(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4), I64(8), U64(8), F64(8);

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

    public boolean isFloat() {
      return this == F16 || this == BF16 || this == F32 || this == F64;
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

    /** The raw little-endian bytes of a tensor, memory-mapped (read-only). */
    public ByteBuffer data(String name) throws IOException {
      Entry e = entry(name);
      return channel.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin(), e.bytes()).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A floating-point tensor's values as fp32, row-major. */
    public float[] floats(String name) throws IOException {
      Entry e = entry(name);
      if (!e.dtype().isFloat()) {
        throw new IllegalArgumentException(file + ": tensor '" + name + "' is " + e.dtype() + ", not a float type");
      }
      if (e.elements() > Integer.MAX_VALUE) {
        throw new IllegalArgumentException(file + ": tensor '" + name + "' is too large for one Java array");
      }
      ByteBuffer b = data(name);
      float[] out = new float[(int) e.elements()];
      for (int i = 0; i < out.length; i++) {
        out[i] = switch (e.dtype()) {
          case F32 -> b.getFloat();
          case F64 -> (float) b.getDouble();
          case F16 -> DType.f16ToFloat(b.getShort());
          case BF16 -> DType.bf16ToFloat(b.getShort());
          default -> throw new AssertionError();
        };
      }
      return out;
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
      out.put((String) e.getKey(), s);
    }
    return Collections.unmodifiableMap(out);
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
    public long bytes() {
      long n = dtype.size;
      for (long d : shape) {
        n = Math.multiplyExact(n, d);
      }
      return n;
    }
  }

  /**
   * Streams a file: the header is fixed from the specs at creation, then each tensor's data is
   * written in spec order, so memory holds one tensor at a time. The file appears under its name
   * only at {@link #commit()} (temporary file, fsync, atomic rename); closing without a commit
   * removes the temporary file and leaves any existing file untouched.
   */
  public static final class Writer implements AutoCloseable {
    private final Path target;
    private final Path tmp;
    private final FileChannel channel;
    private final List<Spec> specs;
    private int next;
    private boolean done;
    private final CRC32C dataCrc = new CRC32C();

    private Writer(Path target, Path tmp, FileChannel channel, List<Spec> specs) {
      this.target = target;
      this.tmp = tmp;
      this.channel = channel;
      this.specs = specs;
    }

    /** The next tensor's data, little-endian, exactly its byte size. */
    public void write(ByteBuffer data) throws IOException {
      if (next >= specs.size()) {
        throw new IllegalStateException("all " + specs.size() + " tensors are written");
      }
      Spec spec = specs.get(next);
      if (data.remaining() != spec.bytes()) {
        throw new IllegalArgumentException("tensor '" + spec.name() + "': expected " + spec.bytes() + " bytes, got "
            + data.remaining());
      }
      dataCrc.update(data.duplicate());
      while (data.hasRemaining()) {
        channel.write(data);
      }
      next++;
    }

    /** The CRC-32C of all tensor data written so far, for formats that store a checksum of it. */
    public int dataCrc32c() {
      return (int) dataCrc.getValue();
    }

    /** The next tensor's values, converted to its dtype (a float type). */
    public void write(float[] values) throws IOException {
      Spec spec = specs.get(next);
      ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(spec.bytes())).order(ByteOrder.LITTLE_ENDIAN);
      for (float v : values) {
        switch (spec.dtype()) {
          case F32 -> b.putFloat(v);
          case F64 -> b.putDouble(v);
          case F16 -> b.putShort(DType.floatToF16(v));
          case BF16 -> b.putShort(DType.floatToBf16(v));
          default -> throw new IllegalArgumentException("tensor '" + spec.name() + "' is " + spec.dtype()
              + ", not a float type");
        }
      }
      write(b.flip());
    }

    /** Forces the data to disk and renames the file into place. */
    public void commit() throws IOException {
      if (next != specs.size()) {
        throw new IllegalStateException((specs.size() - next) + " tensors are still unwritten");
      }
      channel.force(true);
      channel.close();
      AtomicFiles.publish(tmp, target);
      done = true;
    }

    @Override
    public void close() throws IOException {
      if (channel.isOpen()) {
        channel.close();
      }
      if (!done) {
        Files.deleteIfExists(tmp);
      }
    }
  }

  /**
   * Starts a file at {@code target}. Refuses an existing target unless {@code overwrite}; names
   * must be unique and not {@value #METADATA}.
   */
  public static Writer create(Path target, List<Spec> specs, Map<String, String> metadata, boolean overwrite)
      throws IOException {
    AtomicFiles.requireWritable(target, overwrite);
    Map<String, Object> header = new LinkedHashMap<>();
    if (metadata != null && !metadata.isEmpty()) {
      header.put(METADATA, new LinkedHashMap<>(metadata));
    }
    long offset = 0;
    for (Spec s : specs) {
      if (s.name().equals(METADATA) || header.containsKey(s.name())) {
        throw new IllegalArgumentException("tensor name '" + s.name() + "' is reserved or repeated");
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
    Path tmp = AtomicFiles.createTemp(target);
    FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
    Writer w = new Writer(target, tmp, channel, List.copyOf(specs));
    try {
      head.flip();
      while (head.hasRemaining()) {
        channel.write(head);
      }
      return w;
    } catch (IOException | RuntimeException e) {
      w.close();
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
