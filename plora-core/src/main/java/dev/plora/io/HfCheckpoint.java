package dev.plora.io;

import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;

/**
 * The weights of a Hugging Face model folder: {@code model.safetensors}, or the shards that
 * {@code model.safetensors.index.json} lists. Every file's header is validated when the folder is
 * opened; tensor data stays memory-mapped and is uploaded a chunk of rows at a time, converted to
 * the destination's dtype on the way, so host memory stays bounded by one chunk.
 */
public final class HfCheckpoint implements AutoCloseable {
  public static final String SINGLE = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";
  /** Largest index read (a 400-billion-parameter model's index is under 1 MiB). */
  public static final long MAX_INDEX_BYTES = 64L << 20;
  /** Values uploaded per chunk: 4 MiB of fp32 on the host. */
  static final int CHUNK_VALUES = 1 << 20;

  private final Path dir;
  private final Map<String, Safetensors.Reader> files; // shard file name -> reader, in name order
  private final Map<String, String> fileOf;            // tensor -> shard file name
  private final boolean indexed;

  private HfCheckpoint(Path dir, Map<String, Safetensors.Reader> files, Map<String, String> fileOf, boolean indexed) {
    this.dir = dir;
    this.files = files;
    this.fileOf = fileOf;
    this.indexed = indexed;
  }

  /** Opens {@code dir}'s weights: the index and its shards when there is an index, else model.safetensors. */
  public static HfCheckpoint open(Path dir) throws IOException {
    Path index = dir.resolve(INDEX), single = dir.resolve(SINGLE);
    Map<String, Safetensors.Reader> files = new TreeMap<>();
    Map<String, String> fileOf = new LinkedHashMap<>();
    boolean indexed = Files.isRegularFile(index);
    try {
      if (indexed) {
        Map<String, String> weightMap = weightMap(index);
        for (String shard : new TreeSet<>(weightMap.values())) {
          Path file = dir.resolve(shard);
          if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(index + ": shard " + shard + " is missing from " + dir);
          }
          files.put(shard, Safetensors.open(file));
        }
        for (Map.Entry<String, Safetensors.Reader> f : files.entrySet()) {
          for (Safetensors.Entry e : f.getValue().entries()) {
            String listed = weightMap.get(e.name());
            if (!f.getKey().equals(listed)) {
              throw new IllegalArgumentException(f.getValue().file() + ": tensor '" + e.name() + "' is here but "
                  + INDEX + " puts it " + (listed == null ? "nowhere" : "in " + listed));
            }
            fileOf.put(e.name(), f.getKey());
          }
        }
        for (Map.Entry<String, String> w : weightMap.entrySet()) {
          if (!fileOf.containsKey(w.getKey())) {
            throw new IllegalArgumentException(dir.resolve(w.getValue()) + ": tensor '" + w.getKey() + "', listed in "
                + INDEX + ", is not in this shard");
          }
        }
      } else if (Files.isRegularFile(single)) {
        Safetensors.Reader reader = Safetensors.open(single);
        files.put(SINGLE, reader);
        for (Safetensors.Entry e : reader.entries()) {
          fileOf.put(e.name(), SINGLE);
        }
      } else {
        throw new IllegalArgumentException(dir + ": no " + SINGLE + " and no " + INDEX);
      }
    } catch (IOException | RuntimeException e) {
      for (Safetensors.Reader r : files.values()) {
        r.close();
      }
      throw e;
    }
    return new HfCheckpoint(dir, Collections.unmodifiableMap(files), Collections.unmodifiableMap(fileOf),
        indexed);
  }

  private static Map<String, String> weightMap(Path index) throws IOException {
    Object json;
    try {
      json = Json.parse(Json.readSmallFile(index, MAX_INDEX_BYTES, "a checkpoint index"));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(index + ": " + e.getMessage(), e);
    }
    if (!(json instanceof Map<?, ?> map) || !(map.get("weight_map") instanceof Map<?, ?> weights)) {
      throw new IllegalArgumentException(index + ": expected an object with a \"weight_map\" object");
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<?, ?> e : weights.entrySet()) {
      if (!(e.getValue() instanceof String shard) || !isFileName(shard)) {
        throw new IllegalArgumentException(index + ": tensor '" + e.getKey() + "' maps to " + e.getValue()
            + ", expected a file name in the model folder");
      }
      out.put((String) e.getKey(), shard);
    }
    return out;
  }

  /** A plain file name in the model folder: no folders, nothing hidden or relative. */
  private static boolean isFileName(String name) {
    return !name.isEmpty() && !name.contains("/") && !name.contains("\\") && !name.startsWith(".");
  }

  public Path dir() {
    return dir;
  }

  /** Whether the weights were listed by {@value #INDEX} (sharded), not one {@value #SINGLE}. */
  public boolean indexed() {
    return indexed;
  }

  /** The shard files (one, model.safetensors, without an index) and the tensors each holds, in order. */
  public Map<String, List<String>> shards() {
    Map<String, List<String>> out = new LinkedHashMap<>();
    for (Map.Entry<String, Safetensors.Reader> f : files.entrySet()) {
      List<String> names = new ArrayList<>();
      for (Safetensors.Entry e : f.getValue().entries()) {
        names.add(e.name());
      }
      out.put(f.getKey(), List.copyOf(names));
    }
    return out;
  }

  public boolean has(String name) {
    return fileOf.containsKey(name);
  }

  /** The tensor's entry (dtype, shape) in its file. */
  public Safetensors.Entry entry(String name) {
    return reader(name).entry(name);
  }

  /** The file that holds the tensor. */
  public Path file(String name) {
    return reader(name).file();
  }

  /**
   * Checks, before any tensor is read, that the checkpoint holds each expected tensor with its
   * shape, and nothing else but names {@code ignorable} accepts; the refusal names the file, the
   * tensor and both shapes, and lists every problem found.
   */
  public void requireExactly(Map<String, long[]> expected, Predicate<String> ignorable) {
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, long[]> e : expected.entrySet()) {
      if (!has(e.getKey())) {
        problems.add("tensor '" + e.getKey() + "' " + Arrays.toString(e.getValue()) + " is missing");
      } else if (!Arrays.equals(entry(e.getKey()).shape(), e.getValue())) {
        problems.add(file(e.getKey()) + ": tensor '" + e.getKey() + "' has shape "
            + Arrays.toString(entry(e.getKey()).shape()) + ", expected " + Arrays.toString(e.getValue()));
      } else if (!entry(e.getKey()).dtype().isFloat()) {
        problems.add(file(e.getKey()) + ": tensor '" + e.getKey() + "' is " + entry(e.getKey()).dtype()
            + ", expected a float dtype");
      }
    }
    for (String name : fileOf.keySet()) {
      if (!expected.containsKey(name) && !ignorable.test(name)) {
        problems.add(file(name) + ": tensor '" + name + "' " + Arrays.toString(entry(name).shape())
            + " is not used by the model");
      }
    }
    if (!problems.isEmpty()) {
      int shown = Math.min(problems.size(), 10);
      throw new IllegalArgumentException(dir + ": the weights do not fit the model (" + problems.size() + " problem"
          + (problems.size() == 1 ? "" : "s") + "): " + String.join("; ", problems.subList(0, shown))
          + (shown < problems.size() ? "; …" : ""));
    }
  }

  /**
   * Uploads tensor {@code name} (1-D as one row, or 2-D) into {@code dst}, which has its shape,
   * converting to dst's dtype; a chunk of rows at a time.
   */
  public void load(String name, Tensor dst) throws IOException {
    Safetensors.Entry e = entry(name);
    int[] rc = e.matrixShape();
    if (dst.rows() != rc[0] || dst.cols() != rc[1]) {
      throw new IllegalArgumentException(file(name) + ": tensor '" + name + "' has shape "
          + Arrays.toString(e.shape()) + ", but its destination is " + dst.shape());
    }
    int rowsPerChunk = Math.max(1, Math.min(rc[0], CHUNK_VALUES / Math.max(1, rc[1])));
    if ((long) rowsPerChunk * rc[1] > Integer.MAX_VALUE) { // one row of over 2^31 values
      throw new IllegalArgumentException(file(name) + ": tensor '" + name + "' has rows too long to load");
    }
    Safetensors.Reader reader = reader(name);
    FloatBuffer chunk = FloatBuffer.allocate(rowsPerChunk * rc[1]);
    for (int row = 0; row < rc[0]; row += rowsPerChunk) {
      int rows = Math.min(rowsPerChunk, rc[0] - row);
      chunk.clear().limit(rows * rc[1]);
      reader.floats(name, (long) row * rc[1], chunk);
      dst.rowsView(row, rows).copyFrom(chunk.flip());
    }
  }

  /**
   * Lends the tensors to write, one at a time: {@link #lend} gives the tensor of a name (of the
   * shape declared for it), {@link #giveBack} follows once it is written — so a source can compute
   * a tensor (an adapted layer's merged weight) and free it before the next.
   */
  public interface TensorSource {
    Tensor lend(String name);

    default void giveBack(String name, Tensor tensor) {}
  }

  /** {@link #write(Path, Map, Map, TensorSource, Safetensors.Dtype, boolean)} of tensors already held. */
  public static void write(Path dir, Map<String, List<String>> shards, Map<String, long[]> shapes,
      Map<String, Tensor> tensors, Safetensors.Dtype dtype, boolean overwrite) throws IOException {
    for (List<String> names : shards.values()) {
      for (String name : names) {
        if (!tensors.containsKey(name)) {
          throw new IllegalArgumentException("tensor '" + name + "': no tensor given");
        }
      }
    }
    write(dir, shards, shapes, tensors::get, dtype, overwrite);
  }

  /**
   * Writes weights in Hugging Face's layout under {@code dir}: each shard (file name → tensor names,
   * in order, as {@link #shards()} gives them) with the tensors' shapes, in {@code dtype}, downloaded
   * a chunk of rows at a time; with more than the one file {@code model.safetensors}, also the index.
   * The names and shapes are checked before the first file is written; each file appears whole or
   * not at all, and the index last, so an index never names a shard that is not complete.
   */
  public static void write(Path dir, Map<String, List<String>> shards, Map<String, long[]> shapes,
      TensorSource tensors, Safetensors.Dtype dtype, boolean overwrite) throws IOException {
    if (dtype == null || !dtype.isFloat()) {
      throw new IllegalArgumentException("dtype: expected a float dtype, got " + dtype);
    }
    Map<String, String> weightMap = new LinkedHashMap<>();
    long totalBytes = 0;
    for (Map.Entry<String, List<String>> shard : shards.entrySet()) {
      String file = shard.getKey();
      if (!isFileName(file) || !file.endsWith(".safetensors")) {
        throw new IllegalArgumentException("shards: '" + file + "' is not a .safetensors file name");
      }
      for (String name : shard.getValue()) {
        long[] shape = shapes.get(name);
        if (shape == null) {
          throw new IllegalArgumentException("tensor '" + name + "' of shard " + file + ": no shape given");
        }
        long elements = 1;
        for (long d : shape) {
          elements = Math.multiplyExact(elements, d);
        }
        if (elements == 0 || shape.length > 2) {
          throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape)
              + " is empty or of more than two dimensions");
        }
        if (weightMap.put(name, file) != null) {
          throw new IllegalArgumentException("tensor '" + name + "' is in two shards");
        }
        totalBytes += elements * dtype.size;
      }
    }
    Files.createDirectories(dir);
    for (Map.Entry<String, List<String>> shard : shards.entrySet()) {
      List<Safetensors.Spec> specs = new ArrayList<>();
      for (String name : shard.getValue()) {
        specs.add(new Safetensors.Spec(name, dtype, shapes.get(name)));
      }
      // "format": "pt" is what Hugging Face's loaders look for in the metadata
      try (Safetensors.Writer w = Safetensors.create(dir.resolve(shard.getKey()), specs, Map.of("format", "pt"),
          overwrite)) {
        for (String name : shard.getValue()) {
          Tensor t = tensors.lend(name);
          try {
            long[] shape = shapes.get(name);
            if (t == null || t.rows() != (shape.length == 2 ? shape[0] : 1) || t.cols() != shape[shape.length - 1]) {
              throw new IllegalStateException("tensor '" + name + "': the source lent " + (t == null ? "nothing"
                  : t.shape()) + " for shape " + Arrays.toString(shape));
            }
            writeRows(w, t);
          } finally {
            if (t != null) {
              tensors.giveBack(name, t);
            }
          }
        }
        w.commit();
      }
    }
    if (!(shards.size() == 1 && shards.containsKey(SINGLE))) {
      writeIndex(dir, weightMap, totalBytes, overwrite);
    }
  }

  /**
   * Writes {@code dir/model.safetensors.index.json} as Hugging Face does: {@code metadata.total_size}
   * (the bytes of all tensors' data) and {@code weight_map} (tensor → shard file), keys sorted.
   */
  public static void writeIndex(Path dir, Map<String, String> weightMap, long totalBytes, boolean overwrite)
      throws IOException {
    Map<String, Object> index = new LinkedHashMap<>();
    index.put("metadata", Map.of("total_size", totalBytes));
    index.put("weight_map", new TreeMap<>(weightMap));
    AtomicFiles.write(dir.resolve(INDEX), (Json.write(index, 2) + "\n").getBytes(StandardCharsets.UTF_8), overwrite);
  }

  /** Appends a tensor's values to the writer, a chunk of rows at a time. */
  private static void writeRows(Safetensors.Writer w, Tensor t) throws IOException {
    int rowsPerChunk = Math.max(1, Math.min(t.rows(), CHUNK_VALUES / Math.max(1, t.cols())));
    FloatBuffer chunk = FloatBuffer.allocate(Math.toIntExact((long) rowsPerChunk * t.cols()));
    for (int row = 0; row < t.rows(); row += rowsPerChunk) {
      int rows = Math.min(rowsPerChunk, t.rows() - row);
      chunk.clear().limit(rows * t.cols());
      t.rowsView(row, rows).copyTo(chunk);
      w.append(chunk.flip());
    }
  }

  /** The open shard {@code file} (a key of {@link #shards()}), closed with the checkpoint: for streaming reads. */
  public Safetensors.Reader shard(String file) {
    Safetensors.Reader r = files.get(file);
    if (r == null) {
      throw new IllegalArgumentException(dir + ": no shard '" + file + "'");
    }
    return r;
  }

  private Safetensors.Reader reader(String name) {
    String file = fileOf.get(name);
    if (file == null) {
      throw new IllegalArgumentException(dir + ": no tensor '" + name + "'");
    }
    return files.get(file);
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    for (Safetensors.Reader r : files.values()) {
      try {
        r.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
