package dev.plora.train;

import dev.plora.io.Json;
import dev.plora.io.Safetensors;
import dev.plora.lora.LoraLinear;
import dev.plora.optim.AdamW;
import dev.plora.optim.Parameter;
import dev.plora.plora.Unloader;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A training run's full state in one safetensors file, written atomically: every parameter's
 * fp32 value and Adam moments, each LoRA layer's backbone weight as unloading changed it, and in
 * the metadata the step, the optimizer's step, the unload count and each layer's random-stream
 * counters (dropout step, init generation, unloads) — the Philox streams are keyed by these, so
 * restoring them restores every future draw and a resumed CPU run replays bit for bit.
 */
public final class Checkpoints {
  private static final Pattern NAME = Pattern.compile("checkpoint-(\\d{10})\\.safetensors");
  private static final String FORMAT = "plora-checkpoint-1";

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

  static void save(Path file, long step, List<Parameter> parameters, AdamW optimizer, List<LoraLinear> layers,
      Unloader unloader) throws IOException {
    List<Safetensors.Spec> specs = new ArrayList<>();
    List<Tensor> tensors = new ArrayList<>();
    List<Object> names = new ArrayList<>();
    for (int i = 0; i < parameters.size(); i++) {
      Parameter p = parameters.get(i);
      names.add(p.name());
      add(specs, tensors, "param." + i, p.value());
      add(specs, tensors, "adam_m." + i, optimizer.firstMoment(p));
      add(specs, tensors, "adam_v." + i, optimizer.secondMoment(p));
    }
    List<Object> counters = new ArrayList<>();
    for (int j = 0; j < layers.size(); j++) {
      LoraLinear l = layers.get(j);
      add(specs, tensors, "lora." + j + ".weight", l.weight());
      counters.add(List.of(l.step(), l.generation(), l.unloads()));
    }
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("format", FORMAT);
    meta.put("step", Long.toString(step));
    meta.put("optimizer_steps", Long.toString(optimizer.steps()));
    meta.put("unloads", Long.toString(unloader == null ? 0 : unloader.unloads()));
    meta.put("parameters", Json.write(names));
    meta.put("layer_counters", Json.write(counters));
    if (unloader != null) {
      meta.put("periodic", unloader.config().toString());
    }
    Files.createDirectories(file.toAbsolutePath().getParent());
    try (Safetensors.Writer w = Safetensors.create(file, specs, meta, true)) {
      for (Tensor t : tensors) {
        w.write(t.toFloatArray());
      }
      w.commit();
    }
  }

  private static void add(List<Safetensors.Spec> specs, List<Tensor> tensors, String name, Tensor t) {
    specs.add(new Safetensors.Spec(name, Safetensors.Dtype.of(t.dtype()), new long[] {t.rows(), t.cols()}));
    tensors.add(t);
  }

  /** Loads a checkpoint into the run's objects and returns its step; the run's shape must match. */
  static long load(Path file, List<Parameter> parameters, AdamW optimizer, List<LoraLinear> layers, Unloader unloader)
      throws IOException {
    try (Safetensors.Reader r = Safetensors.open(file)) {
      Map<String, String> meta = r.metadata();
      if (!FORMAT.equals(meta.get("format"))) {
        throw new IllegalArgumentException(file + ": not a plora checkpoint (format " + meta.get("format") + ")");
      }
      Object names = Json.parse(meta.get("parameters"));
      List<Object> expected = new ArrayList<>();
      parameters.forEach(p -> expected.add(p.name()));
      if (!expected.equals(names)) {
        throw new IllegalArgumentException(file + ": holds parameters " + names + ", this run trains " + expected);
      }
      List<?> counters = (List<?>) Json.parse(meta.get("layer_counters"));
      if (counters.size() != layers.size()) {
        throw new IllegalArgumentException(file + ": holds " + counters.size() + " LoRA layers, this run has "
            + layers.size());
      }
      for (int i = 0; i < parameters.size(); i++) {
        Parameter p = parameters.get(i);
        fill(r, "param." + i, p.value());
        fill(r, "adam_m." + i, optimizer.firstMoment(p));
        fill(r, "adam_v." + i, optimizer.secondMoment(p));
        if (p.computeCopy() != null) {
          p.value().backend().copy(p.value(), p.computeCopy());
        }
      }
      for (int j = 0; j < layers.size(); j++) {
        fill(r, "lora." + j + ".weight", layers.get(j).weight());
        List<?> c = (List<?>) counters.get(j);
        layers.get(j).restoreCounters(number(c.get(0)), number(c.get(1)), number(c.get(2)));
      }
      optimizer.setSteps(Long.parseLong(meta.get("optimizer_steps")));
      if (unloader != null) {
        unloader.setUnloads(Long.parseLong(meta.get("unloads")));
      }
      return Long.parseLong(meta.get("step"));
    }
  }

  private static long number(Object o) {
    return ((BigDecimal) o).longValueExact();
  }

  private static void fill(Safetensors.Reader r, String name, Tensor t) throws IOException {
    Safetensors.Entry e = r.entry(name);
    if (e.shape().length != 2 || e.shape()[0] != t.rows() || e.shape()[1] != t.cols()) {
      throw new IllegalArgumentException(r.file() + ": '" + name + "' has shape " + java.util.Arrays.toString(e.shape())
          + ", this run's is " + t.shape());
    }
    t.copyFrom(r.floats(name));
  }

  /** Deletes all but the newest {@code keep} checkpoints. */
  static void prune(Path dir, int keep) throws IOException {
    List<Path> all = list(dir);
    for (int i = 0; i < all.size() - keep; i++) {
      Files.deleteIfExists(all.get(i));
    }
  }
}
