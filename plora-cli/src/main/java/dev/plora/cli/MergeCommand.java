package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.backend.Rounding;
import dev.plora.io.HfCheckpoint;
import dev.plora.io.HfModelFolder;
import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.DoubleSummaryStatistics;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code plora merge}: base weights + a PEFT LoRA adapter → merged weights, tensor by tensor and
 * each in chunks of rows (peak memory is a chunk, not a tensor or the model), with the native
 * merge kernel (F64 bases on the host, in double precision), written atomically. BASE is one
 * safetensors file (OUT is then one too) or a Hugging Face model folder (OUT is then a model
 * folder: the same shards and index, with BASE's config and tokenizer files, written as a
 * temporary folder beside OUT and renamed into place when complete).
 */
@Command(name = "merge", description = "Merge a PEFT LoRA adapter into base weights (a safetensors file or a model "
    + "folder), tensor by tensor.")
final class MergeCommand implements Callable<Integer> {
  /**
   * Base bytes handled at a time (counted as fp32, or fp64 for F64 merges): memory stays bounded
   * whatever a tensor's size. Package-private so that tests can prove chunking changes no bit.
   */
  static long chunkBytes = 16L << 20;

  /**
   * Stochastic rounding draws from Philox (seed, stream = block · 2^32 + the tensor's position in
   * BASE), one stream per block of rows of at most this many elements (at least one row), its
   * counter the element's place in the block. Tensors of one block round as a single merge call.
   */
  static final long ROUNDING_BLOCK_ELEMENTS = 1 << 20;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--base", required = true, paramLabel = "BASE", description = "Base weights: a .safetensors file, "
      + "a Hugging Face model folder, or its " + HfCheckpoint.INDEX + ".")
  Path base;

  @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "PEFT adapter folder.")
  Path adapter;

  @Option(names = "--out", required = true, paramLabel = "OUT", description = "Merged weights to write: a "
      + ".safetensors file for a file BASE, a model folder for a folder BASE.")
  Path out;

  @Option(names = "--dtype", description = "f32, bf16 or f16 for the floating-point tensors (default: as in BASE).")
  String dtype;

  @Option(names = "--rounding", description = "nearest or stochastic (bf16 only) for merged weights "
      + "(default nearest).", defaultValue = "nearest")
  String rounding;

  @Option(names = "--force", description = "Replace OUT if it exists (a folder only if it is a model folder).")
  boolean force;

  @Option(names = "--backend", description = "cpu or cuda (default: as plora info says).")
  String backendName;

  @Option(names = "--seed", description = "Seed of stochastic rounding (default 0).", defaultValue = "0")
  long seed;

  /** The merge's settings, once parsed, and the progress shown across BASE's files. */
  private Rounding mode;
  private DType forced;
  private PeftAdapter peft;
  private Set<String> merged;
  private int done;
  private int total;

  @Override
  public Integer call() throws Exception {
    mode = switch (rounding.toLowerCase(Locale.ROOT)) {
      case "nearest" -> Rounding.NEAREST;
      case "stochastic" -> Rounding.STOCHASTIC;
      default -> throw new IllegalArgumentException("--rounding: expected nearest or stochastic, got '" + rounding + "'");
    };
    forced = dtype == null ? null : Options.dtype("--dtype", dtype, true);
    Path folder = modelFolder(base);
    if (folder == null) {
      Options.inputFile("--base", base);
    }
    Options.adapterFolder("--adapter", adapter);
    if (folder == null) {
      Options.outputFile("--out", out, force);
    } else {
      Options.outputModelFolder("--out", out, force, folder, adapter);
    }
    peft = PeftAdapter.read(adapter);
    try (Backend backend = Options.backend(backendName)) {
      if (folder == null) {
        try (Safetensors.Reader in = Safetensors.open(base)) {
          merged = check(List.of(in));
          try {
            mergeFile(backend, in, out, force);
          } catch (IOException e) {
            throw Options.cannotWrite(out, e);
          }
        }
      } else {
        mergeFolder(backend, folder);
      }
    }
    spec.commandLine().getOut().printf(Locale.ROOT, "merged %d modules (%s) into %s%n", merged.size(),
        scalings(peft, merged), out);
    return 0;
  }

  /** The model folder BASE names (itself, or the folder of its index), or null for a single file. */
  private static Path modelFolder(Path base) {
    if (Files.isDirectory(base)) {
      return base;
    }
    Path name = base.getFileName();
    if (name != null && name.toString().equals(HfCheckpoint.INDEX)) {
      Path parent = base.toAbsolutePath().getParent();
      if (!Files.isRegularFile(base)) {
        throw new IllegalArgumentException("--base: no such file: " + base);
      }
      return parent;
    }
    return null;
  }

  /**
   * Merges every shard of model folder {@code folder} into the same shard of OUT, then writes the
   * index (total_size counted in the output dtypes) and copies the companion files, all in a
   * temporary folder that becomes OUT only when complete.
   */
  private void mergeFolder(Backend backend, Path folder) throws IOException {
    try (HfCheckpoint in = HfCheckpoint.open(folder)) {
      Map<String, List<String>> shards = in.shards();
      List<Safetensors.Reader> files = new ArrayList<>();
      shards.keySet().forEach(file -> files.add(in.shard(file)));
      merged = check(files);
      try {
        HfModelFolder.write(out, force, dir -> {
          Map<String, String> weightMap = new LinkedHashMap<>();
          long totalBytes = 0;
          for (Map.Entry<String, List<String>> shard : shards.entrySet()) {
            totalBytes += mergeFile(backend, in.shard(shard.getKey()), dir.resolve(shard.getKey()), false);
            shard.getValue().forEach(name -> weightMap.put(name, shard.getKey()));
          }
          if (in.indexed()) {
            HfCheckpoint.writeIndex(dir, weightMap, totalBytes, false);
          }
          HfModelFolder.copyCompanionFiles(folder, dir, forced == null ? null : Safetensors.Dtype.of(forced));
        });
      } catch (IOException e) {
        throw Options.cannotWrite(out, e);
      }
    }
  }

  /**
   * Checks, before anything is written, that every adapter module has a float weight
   * {@code <module>.weight} of the adapter's [out, in] in BASE's files, and that the output dtypes
   * allow the rounding; returns the modules to merge. Also counts the tensors, for the progress bar.
   */
  private Set<String> check(List<Safetensors.Reader> files) {
    Set<String> found = new HashSet<>();
    for (Safetensors.Reader in : files) {
      for (Safetensors.Entry e : in.entries()) {
        total++;
        String module = module(e);
        if (module == null) {
          continue;
        }
        PeftAdapter.Module m = peft.modules().get(module);
        if (e.shape().length != 2 || e.shape()[0] != m.out() || e.shape()[1] != m.in()) {
          throw new IllegalArgumentException("module '" + module + "': base weight '" + e.name() + "' in " + in.file()
              + " has shape " + Arrays.toString(e.shape()) + ", the adapter's update B·A is [out, in] = [" + m.out()
              + ", " + m.in() + "]");
        }
        if (!e.dtype().isFloat()) {
          throw new IllegalArgumentException("module '" + module + "': base weight '" + e.name() + "' in " + in.file()
              + " is " + e.dtype() + ", expected a float dtype");
        }
        if (mode == Rounding.STOCHASTIC && outType(e) != Safetensors.Dtype.BF16) {
          throw new IllegalArgumentException("--rounding stochastic needs bf16 output, '" + e.name() + "' would be "
              + outType(e));
        }
        found.add(module);
      }
    }
    for (String module : peft.modules().keySet()) {
      if (!found.contains(module)) {
        throw new IllegalArgumentException("adapter module '" + module + "' has no weight '" + module
            + ".weight' in " + base);
      }
    }
    return found;
  }

  /** The adapter module whose weight {@code e} is, or null when no adapter module adapts it. */
  private String module(Safetensors.Entry e) {
    if (!e.name().endsWith(".weight")) {
      return null;
    }
    String module = e.name().substring(0, e.name().length() - ".weight".length());
    return peft.modules().containsKey(module) ? module : null;
  }

  /**
   * Writes {@code target}: each tensor of {@code in}, merged when an adapter module adapts it,
   * else copied (bit for bit, or converted to --dtype); the file appears whole or not at all.
   * Returns the bytes of its tensors' data.
   */
  private long mergeFile(Backend backend, Safetensors.Reader in, Path target, boolean overwrite) throws IOException {
    List<Safetensors.Spec> specs = new ArrayList<>();
    long bytes = 0;
    for (Safetensors.Entry e : in.entries()) {
      specs.add(new Safetensors.Spec(e.name(), outType(e), e.shape()));
      bytes += specs.get(specs.size() - 1).bytes();
    }
    Map<String, String> metadata = new LinkedHashMap<>(in.metadata());
    metadata.put("plora_merged_adapter", adapter.toString());
    PrintWriter err = spec.commandLine().getErr();
    try (Safetensors.Writer w = Safetensors.create(target, specs, metadata, overwrite)) {
      for (Safetensors.Entry e : in.entries()) {
        Safetensors.Dtype type = outType(e);
        String module = module(e);
        if (module != null && type == Safetensors.Dtype.F64) {
          mergeInF64(in, e, peft.modules().get(module), peft.config().scaling(module), w);
        } else if (module != null) {
          mergeOnBackend(backend, in, e, peft.modules().get(module), (float) peft.config().scaling(module), type,
              done, w);
        } else {
          w.copy(in, e.name(), chunkBytes); // bit for bit, or converted to --dtype without overflow
        }
        done++;
        progress(err, done, total, e.name());
      }
      w.commit();
    }
    return bytes;
  }

  /**
   * W + s·B·A for one module on the backend, in the output dtype, appended to {@code out} a chunk
   * of rows at a time: {@code W[i0:i1] += s·B[i0:i1]·A}. Refuses non-finite results. Stochastic
   * rounding draws from Philox (seed, stream) with one stream per block of rows (see
   * {@link #ROUNDING_BLOCK_ELEMENTS}), so its bits do not depend on the chunks.
   */
  private void mergeOnBackend(Backend backend, Safetensors.Reader in, Safetensors.Entry e, PeftAdapter.Module m,
      float scaling, Safetensors.Dtype type, int index, Safetensors.Writer out) throws IOException {
    DType storage = switch (type) {
      case BF16 -> DType.BF16;
      case F16 -> DType.F16;
      default -> DType.F32;
    };
    int rows = m.out(), cols = m.in();
    int blockRows = (int) Math.max(1, Math.min(rows, ROUNDING_BLOCK_ELEMENTS / cols));
    int chunkRows = chunkRows(rows, cols, Float.BYTES);
    if (mode == Rounding.STOCHASTIC) {
      chunkRows = Math.max(blockRows, chunkRows / blockRows * blockRows);
    }
    try (TensorScope s = new TensorScope(backend)) {
      Tensor a = s.fromArray(m.a(), m.r(), cols, DType.F32);
      Tensor b = s.fromArray(m.b(), rows, m.r(), DType.F32);
      Tensor chunk = s.allocate(chunkRows, cols, storage);
      FloatBuffer values = FloatBuffer.allocate(chunkRows * cols);
      for (int i0 = 0; i0 < rows; i0 += chunkRows) {
        int n = Math.min(chunkRows, rows - i0);
        Tensor w = chunk.rowsView(0, n);
        values.clear().limit(n * cols);
        in.floats(e.name(), (long) i0 * cols, values);
        backend.write(w, values.flip());
        for (int j0 = 0; j0 < n; j0 += blockRows) {
          int nb = Math.min(blockRows, n - j0), block = (i0 + j0) / blockRows;
          backend.merge(w.rowsView(j0, nb), b.rowsView(i0 + j0, nb), a, scaling, mode, seed,
              (long) block << 32 | index, 1f, 1f);
        }
        long bad = backend.countNonFinite(w);
        if (bad > 0) {
          throw nonFinite(e, bad, i0, n);
        }
        values.clear();
        backend.read(w, values);
        out.append(values.flip());
      }
    }
  }

  /**
   * W + s·B·A in double precision, for an F64 base written as F64 (the backends compute in fp32),
   * a chunk of rows at a time; A and B are widened exactly. Refuses non-finite results.
   */
  private static void mergeInF64(Safetensors.Reader in, Safetensors.Entry e, PeftAdapter.Module m, double scaling,
      Safetensors.Writer out) throws IOException {
    int rows = m.out(), cols = m.in(), r = m.r();
    int chunkRows = chunkRows(rows, cols, Double.BYTES);
    float[] a = m.a(), b = m.b();
    double[] delta = new double[cols];
    DoubleBuffer values = DoubleBuffer.allocate(chunkRows * cols);
    for (int i0 = 0; i0 < rows; i0 += chunkRows) {
      int n = Math.min(chunkRows, rows - i0);
      DoubleBuffer base = in.data(e.name(), (long) i0 * cols * Double.BYTES, Math.toIntExact((long) n * cols
          * Double.BYTES)).asDoubleBuffer();
      values.clear();
      long bad = 0;
      for (int i = i0; i < i0 + n; i++) {
        Arrays.fill(delta, 0);
        for (int j = 0; j < r; j++) {
          double bij = b[i * r + j];
          for (int t = 0, at = j * cols; t < cols; t++) {
            delta[t] += bij * a[at + t];
          }
        }
        for (int t = 0; t < cols; t++) {
          double v = base.get() + scaling * delta[t];
          bad += Double.isFinite(v) ? 0 : 1;
          values.put(v);
        }
      }
      if (bad > 0) {
        throw nonFinite(e, bad, i0, n);
      }
      out.append(values.flip());
    }
  }

  /** Rows per chunk: {@link #chunkBytes} of values of {@code valueBytes} each, at least one row. */
  private static int chunkRows(int rows, int cols, int valueBytes) {
    return (int) Math.max(1, Math.min(rows, chunkBytes / ((long) cols * valueBytes)));
  }

  private static IllegalArgumentException nonFinite(Safetensors.Entry e, long count, int row, int rows) {
    return new IllegalArgumentException("merge refused: '" + e.name() + "' would hold " + count
        + " non-finite values (in rows " + row + " to " + (row + rows - 1) + "); nothing was written");
  }

  /** "scaling s", or "scaling s1 to s2" when rank_pattern / alpha_pattern give modules different ones. */
  private static String scalings(PeftAdapter peft, Set<String> modules) {
    DoubleSummaryStatistics s = modules.stream().mapToDouble(m -> peft.config().scaling(m)).summaryStatistics();
    if (s.getCount() == 0 || s.getMin() == s.getMax()) {
      return String.format(Locale.ROOT, "scaling %.6g", s.getCount() == 0 ? peft.config().scaling() : s.getMin());
    }
    return String.format(Locale.ROOT, "scaling %.6g to %.6g", s.getMin(), s.getMax());
  }

  private Safetensors.Dtype outType(Safetensors.Entry e) {
    if (forced == null || !e.dtype().isFloat()) {
      return e.dtype();
    }
    return Safetensors.Dtype.of(forced);
  }

  private static void progress(PrintWriter err, int done, int total, String name) {
    if (System.console() == null) {
      return;
    }
    int filled = (int) Math.round(30.0 * done / total);
    err.printf(Locale.ROOT, "\rmerge [%s%s] %d/%d %-50.50s", "=".repeat(filled), " ".repeat(30 - filled), done, total, name);
    if (done == total) {
      err.println();
    }
    err.flush();
  }
}
