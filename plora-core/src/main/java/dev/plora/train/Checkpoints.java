package dev.plora.train;

import dev.plora.io.Json;
import dev.plora.io.Safetensors;
import dev.plora.io.SafetensorsFormatException;
import dev.plora.lora.LoraAdapter;
import dev.plora.optim.AdamW;
import dev.plora.optim.Parameter;
import dev.plora.plora.Unloader;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/**
 * A training run's full state in one safetensors file, written atomically: every parameter's
 * fp32 value and Adam moments, each adapted module's backbone weight as unloading changed it
 * ({@code lora.<module path>.weight}), and in the metadata the step, the optimizer's step, the
 * unload count, the adapted modules' paths ({@code adapters}) and each one's random-stream
 * counters (dropout step, init generation, unloads) — the Philox streams are keyed by these, so
 * restoring them restores every future draw and a resumed CPU run replays bit for bit.
 *
 * <p>The last tensor, {@value #CHECKSUMS}, holds two CRC-32C: of the other tensors' data bytes in
 * file order, and of the metadata (as JSON with sorted keys). It is written after the data because
 * the header is fixed before the data streams out, one tensor at a time.
 */
public final class Checkpoints {
  private static final Pattern NAME = Pattern.compile("checkpoint-(\\d{10})\\.safetensors");
  private static final String FORMAT = "plora-checkpoint-2";
  /** Format 1 had no checksums; pre-1.0, its files are refused rather than loaded unchecked. */
  private static final String FORMAT_WITHOUT_CHECKSUMS = "plora-checkpoint-1";
  static final String CHECKSUMS = "checksums";
  private static final Pattern COUNTER = Pattern.compile("\\d{1,19}");
  private static final BigDecimal LONG_MAX = BigDecimal.valueOf(Long.MAX_VALUE);

  private Checkpoints() {}

  /** The file name of the checkpoint after {@code step} steps. */
  public static Path fileFor(Path dir, long step) {
    return dir.resolve(String.format("checkpoint-%010d.safetensors", step));
  }

  /** The newest complete checkpoint in {@code dir} (temporary files of an interrupted save are ignored). */
  public static Optional<Path> latest(Path dir) throws IOException {
    return list(dir).stream().reduce((a, b) -> b);
  }

  /** Complete checkpoints in {@code dir}, oldest first. */
  public static List<Path> list(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(p -> NAME.matcher(p.getFileName().toString()).matches()).sorted().toList();
    }
  }

  /** A tensor of the run's state, under its name in the file; {@code of} says what it is, for messages. */
  private record Slot(String name, String of, Tensor tensor) {
    String field() {
      return "tensor '" + name + "' (" + of + ")";
    }
  }

  /** The run's tensors in file order; saving and loading both go by this list. */
  private static List<Slot> slots(List<Parameter> parameters, AdamW optimizer, Map<String, LoraAdapter> adapters) {
    List<Slot> slots = new ArrayList<>();
    for (int i = 0; i < parameters.size(); i++) {
      Parameter p = parameters.get(i);
      slots.add(new Slot("param." + i, p.name(), p.value()));
      slots.add(new Slot("adam_m." + i, "Adam first moment of " + p.name(), optimizer.firstMoment(p)));
      slots.add(new Slot("adam_v." + i, "Adam second moment of " + p.name(), optimizer.secondMoment(p)));
    }
    for (Map.Entry<String, LoraAdapter> a : adapters.entrySet()) {
      slots.add(new Slot("lora." + a.getKey() + ".weight", "backbone weight of adapted module " + a.getKey(),
          a.getValue().weight()));
    }
    return slots;
  }

  static void save(Path file, long step, List<Parameter> parameters, AdamW optimizer, Map<String, LoraAdapter> adapters,
      Unloader unloader) throws IOException {
    List<Slot> slots = slots(parameters, optimizer, adapters);
    List<Safetensors.Spec> specs = new ArrayList<>();
    for (Slot s : slots) {
      Tensor t = s.tensor();
      specs.add(new Safetensors.Spec(s.name(), Safetensors.Dtype.of(t.dtype()), new long[] {t.rows(), t.cols()}));
    }
    List<Object> names = new ArrayList<>();
    parameters.forEach(p -> names.add(p.name()));
    List<Object> counters = new ArrayList<>();
    adapters.values().forEach(l -> counters.add(List.of(l.step(), l.generation(), l.unloads())));
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", FORMAT);
    meta.put("step", Long.toString(step));
    meta.put("optimizer_steps", Long.toString(optimizer.steps()));
    meta.put("unloads", Long.toString(unloader == null ? 0 : unloader.unloads()));
    meta.put("parameters", Json.write(names));
    meta.put("adapters", Json.write(List.copyOf(adapters.keySet())));
    meta.put("layer_counters", Json.write(counters));
    if (unloader != null) {
      meta.put("periodic", unloader.config().toString());
    }
    Files.createDirectories(file.toAbsolutePath().getParent());
    write(file, specs, meta, w -> {
      for (Slot s : slots) {
        w.write(s.tensor().toFloatArray());
      }
    });
  }

  /** Streams the tensors of a checkpoint into a {@link Safetensors.Writer}, in the order of their specs. */
  @FunctionalInterface
  interface TensorData {
    void writeTo(Safetensors.Writer w) throws IOException;
  }

  /** Writes a checkpoint file atomically: the tensors {@code data} streams, then the checksums. */
  static void write(Path file, List<Safetensors.Spec> specs, Map<String, String> meta, TensorData data)
      throws IOException {
    List<Safetensors.Spec> all = new ArrayList<>(specs);
    all.add(new Safetensors.Spec(CHECKSUMS, Safetensors.Dtype.U32, new long[] {2}));
    try (Safetensors.Writer w = Safetensors.create(file, all, meta, true)) {
      data.writeTo(w);
      w.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(w.dataCrc32c()).putInt(crc32c(meta))
          .flip());
      w.commit();
    }
  }

  private static int crc32c(Map<String, String> meta) {
    CRC32C crc = new CRC32C();
    crc.update(Json.write(new TreeMap<>(meta)).getBytes(StandardCharsets.UTF_8));
    return (int) crc.getValue();
  }

  /**
   * Loads a checkpoint into the run's objects and returns its step. Everything is checked before
   * the first write — format, checksums, every metadata field, each tensor's name, dtype and shape
   * against the run's — and a mismatch throws {@link CheckpointFormatException} with the run
   * unchanged; only an I/O error while copying the data can leave it partly loaded.
   */
  static long load(Path file, List<Parameter> parameters, AdamW optimizer, Map<String, LoraAdapter> adapters,
      Unloader unloader)
      throws IOException {
    try (Safetensors.Reader r = open(file)) {
      Map<String, String> meta = r.metadata();
      requireFormat(file, meta.get("format"));
      verifyChecksums(r);
      long step = counter(file, meta, "step");
      long optimizerSteps = counter(file, meta, "optimizer_steps");
      long unloads = counter(file, meta, "unloads");
      requireNames(file, "parameters", meta.get("parameters"), parameters.stream().map(Parameter::name).toList(),
          "parameter");
      requireNames(file, "adapters", meta.get("adapters"), List.copyOf(adapters.keySet()), "adapter");
      long[][] counters = layerCounters(file, meta.get("layer_counters"), adapters.size());
      List<Slot> slots = slots(parameters, optimizer, adapters);
      requireTensors(r, slots);
      // every check passed: only now is the run's state written
      for (Slot s : slots) {
        s.tensor().copyFrom(r.floats(s.name()));
      }
      for (Parameter p : parameters) {
        if (p.computeCopy() != null) {
          p.value().backend().copy(p.value(), p.computeCopy());
        }
      }
      int j = 0;
      for (LoraAdapter l : adapters.values()) {
        l.restoreCounters(counters[j][0], counters[j][1], counters[j][2]);
        j++;
      }
      optimizer.setSteps(optimizerSteps);
      if (unloader != null) {
        unloader.setUnloads(unloads);
      }
      return step;
    }
  }

  private static Safetensors.Reader open(Path file) throws IOException {
    try {
      return Safetensors.open(file);
    } catch (SafetensorsFormatException e) {
      throw new CheckpointFormatException(e);
    }
  }

  private static void requireFormat(Path file, String format) {
    if (FORMAT_WITHOUT_CHECKSUMS.equals(format)) {
      throw new CheckpointFormatException(file, "metadata field 'format'", format + " is an older checkpoint format, "
          + "without checksums; this version reads only " + FORMAT);
    }
    if (!FORMAT.equals(format)) {
      throw new CheckpointFormatException(file, "metadata field 'format'", "not a plora checkpoint (expected "
          + FORMAT + ", got " + (format == null ? "none" : "'" + excerpt(format) + "'") + ")");
    }
  }

  private static void verifyChecksums(Safetensors.Reader r) throws IOException {
    Path file = r.file();
    Safetensors.Entry sums = r.entries().stream().filter(e -> e.name().equals(CHECKSUMS)).findFirst().orElse(null);
    if (sums == null || sums.dtype() != Safetensors.Dtype.U32 || !Arrays.equals(sums.shape(), new long[] {2})) {
      throw new CheckpointFormatException(file, "tensor '" + CHECKSUMS + "'", "expected 2 U32 values, got "
          + (sums == null ? "none" : sums.dtype() + " " + Arrays.toString(sums.shape())));
    }
    CRC32C data = new CRC32C();
    for (Safetensors.Entry e : r.entries()) {
      if (e != sums) {
        data.update(r.data(e.name()));
      }
    }
    ByteBuffer expected = r.data(CHECKSUMS);
    String corrupt = "does not match its CRC-32C checksum (the file is corrupt)";
    if ((int) data.getValue() != expected.getInt(0)) {
      throw new CheckpointFormatException(file, "tensor data", corrupt);
    }
    if (crc32c(r.metadata()) != expected.getInt(4)) {
      throw new CheckpointFormatException(file, "metadata", corrupt);
    }
  }

  /** A non-negative decimal integer of the metadata. */
  private static long counter(Path file, Map<String, String> meta, String field) {
    String value = meta.get(field);
    if (value != null && COUNTER.matcher(value).matches()) {
      try {
        return Long.parseLong(value);
      } catch (NumberFormatException e) {
        // 19 digits beyond Long.MAX_VALUE: refused below
      }
    }
    throw new CheckpointFormatException(file, "metadata field '" + field + "'", "expected an integer from 0 to "
        + Long.MAX_VALUE + ", got " + (value == null ? "none" : "'" + excerpt(value) + "'"));
  }

  private static Object json(Path file, String field, String value) {
    if (value == null) {
      throw new CheckpointFormatException(file, "metadata field '" + field + "'", "missing");
    }
    try {
      return Json.parse(value);
    } catch (Json.JsonException e) {
      throw new CheckpointFormatException(file, "metadata field '" + field + "'", e.getMessage());
    }
  }

  /** The metadata list {@code key} names exactly {@code expected}, in order ({@code what}: "parameter", …). */
  private static void requireNames(Path file, String key, String value, List<String> expected, String what) {
    String field = "metadata field '" + key + "'";
    Object parsed = json(file, key, value);
    if (!(parsed instanceof List<?> names) || !names.stream().allMatch(String.class::isInstance)) {
      throw new CheckpointFormatException(file, field, "expected a JSON array of " + what + " names, got '"
          + excerpt(value) + "'");
    }
    if (names.size() != expected.size()) {
      throw new CheckpointFormatException(file, field, "holds " + names.size() + " " + what + "s, this run has "
          + expected.size());
    }
    for (int i = 0; i < names.size(); i++) {
      if (!names.get(i).equals(expected.get(i))) {
        throw new CheckpointFormatException(file, field, what + " " + i + " is '" + excerpt((String) names.get(i))
            + "', this run's is '" + expected.get(i) + "'");
      }
    }
  }

  /** Each LoRA layer's [step, generation, unloads]. */
  private static long[][] layerCounters(Path file, String value, int layers) {
    String field = "layer_counters";
    if (!(json(file, field, value) instanceof List<?> list)) {
      throw new CheckpointFormatException(file, "metadata field '" + field + "'", "expected a JSON array, got '"
          + excerpt(value) + "'");
    }
    if (list.size() != layers) {
      throw new CheckpointFormatException(file, "metadata field '" + field + "'", "holds " + list.size()
          + " LoRA layers, this run has " + layers);
    }
    long[][] out = new long[layers][3];
    for (int j = 0; j < layers; j++) {
      String at = field + "[" + j + "]";
      if (!(list.get(j) instanceof List<?> c) || c.size() != 3) {
        throw new CheckpointFormatException(file, "metadata field '" + at + "'",
            "expected [step, generation, unloads], got " + excerpt(Json.write(list.get(j))));
      }
      for (int k = 0; k < 3; k++) {
        if (!(c.get(k) instanceof BigDecimal d) || d.signum() < 0 || d.stripTrailingZeros().scale() > 0
            || d.compareTo(LONG_MAX) > 0) {
          throw new CheckpointFormatException(file, "metadata field '" + at + "[" + k + "]'", "expected an integer "
              + "from 0 to " + Long.MAX_VALUE + ", got " + excerpt(Json.write(c.get(k))));
        }
        out[j][k] = d.longValueExact();
      }
    }
    return out;
  }

  /** The file holds exactly the run's tensors (and the checksums), each in its dtype and shape. */
  private static void requireTensors(Safetensors.Reader r, List<Slot> slots) {
    Map<String, Safetensors.Entry> entries = new LinkedHashMap<>();
    r.entries().forEach(e -> entries.put(e.name(), e));
    entries.remove(CHECKSUMS);
    for (Slot s : slots) {
      Safetensors.Entry e = entries.remove(s.name());
      Tensor t = s.tensor();
      long[] shape = {t.rows(), t.cols()};
      if (e == null) {
        throw new CheckpointFormatException(r.file(), s.field(), "missing");
      }
      if (e.dtype() != Safetensors.Dtype.of(t.dtype())) {
        throw new CheckpointFormatException(r.file(), s.field(), "dtype " + e.dtype() + ", this run's is " + t.dtype());
      }
      if (!Arrays.equals(e.shape(), shape)) {
        throw new CheckpointFormatException(r.file(), s.field(), "shape " + Arrays.toString(e.shape())
            + ", this run's is " + Arrays.toString(shape));
      }
      t.requireOpen(s.field() + " of this run");
    }
    if (!entries.isEmpty()) {
      String name = entries.keySet().iterator().next();
      throw new CheckpointFormatException(r.file(), "tensor '" + excerpt(name) + "'", "not part of this run's state");
    }
  }

  /** The start of a value from the file, short enough to quote. */
  private static String excerpt(String s) {
    return s.length() <= 60 ? s : s.substring(0, 60) + "...";
  }

  /** Deletes all but the newest {@code keep} checkpoints. */
  static void prune(Path dir, int keep) throws IOException {
    List<Path> all = list(dir);
    for (int i = 0; i < all.size() - keep; i++) {
      Files.deleteIfExists(all.get(i));
    }
  }
}
