package dev.plora.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.io.Safetensors;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.model.Mlp;
import dev.plora.optim.AdamW;
import dev.plora.optim.LrSchedule;
import dev.plora.optim.Parameter;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.train.TrainerTest.Batch;
import dev.plora.train.TrainerTest.Recorder;
import dev.plora.train.TrainerTest.Task;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
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
import java.util.SplittableRandom;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
  @TempDir Path dir;

  private static Trainer.Builder<Batch> builder(Task task, long steps) {
    return task.trainer(steps).periodic(PeriodicLoraConfig.momentum(5, 0.3f));
  }

  private static List<float[]> state(Task task) {
    List<float[]> out = new ArrayList<>();
    for (LoraLinear l : task.student.loraLayers()) {
      out.add(l.weight().toFloatArray());
      out.add(l.adapter().masterA().toFloatArray());
      out.add(l.adapter().masterB().toFloatArray());
    }
    return out;
  }

  /** 30 steps straight, against 15 steps + a checkpoint + a fresh process-like restart + 15 steps. */
  @Test
  void resumingReplaysTheUninterruptedRunBitForBit() throws Exception {
    double[] straight;
    List<float[]> straightState;
    try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0.2f)) {
      Recorder rec = new Recorder();
      try (Trainer<Batch> t = builder(task, 30).listener(rec).build()) {
        t.run();
      }
      straight = rec.array();
      straightState = state(task);
    }
    Path checkpoints = dir.resolve("ckpt");
    try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0.2f)) {
      try (Trainer<Batch> t = builder(task, 15).checkpoints(checkpoints, 5, 2).build()) {
        t.run();
      }
    }
    List<Path> kept = assertDoesNotThrowList(checkpoints);
    assertEquals(2, kept.size(), "keeps the newest 2: " + kept);
    assertTrue(kept.get(1).getFileName().toString().contains("0000000015"), kept.toString());
    try (Backend backend = new CpuBackend(); Task task = new Task(backend, 4, 0.2f)) {
      Recorder rec = new Recorder();
      try (Trainer<Batch> t = builder(task, 30).listener(rec).build()) {
        t.loadCheckpoint(Checkpoints.latest(checkpoints).orElseThrow());
        assertEquals(15, t.step());
        t.run();
      }
      double[] resumed = rec.array();
      assertEquals(15, resumed.length);
      assertArrayEquals(java.util.Arrays.copyOfRange(straight, 15, 30), resumed, "losses of steps 15..29");
      List<float[]> s = state(task);
      for (int i = 0; i < s.size(); i++) {
        assertArrayEquals(straightState.get(i), s.get(i), "final state " + i);
      }
    }
  }

  private static List<Path> assertDoesNotThrowList(Path dir) {
    try {
      return Checkpoints.list(dir);
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void aCheckpointOfAnotherRunIsRefused() {
    Path file = dir.resolve("c.safetensors");
    try (Backend backend = new CpuBackend(); Task a = new Task(backend, 4, 0f); Task b = new Task(backend, 2, 0f)) {
      try (Trainer<Batch> t = a.trainer(1).build()) {
        t.saveCheckpoint(file);
      }
      try (Trainer<Batch> t = b.trainer(1).build()) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.loadCheckpoint(file));
        assertTrue(e.getMessage().contains("shape"), e.getMessage());
      }
    }
  }

  /** A process killed while saving leaves the previous checkpoint complete and loadable. */
  @Test
  void aKilledSaveLeavesThePreviousCheckpointLoadable() throws Exception {
    Path checkpoints = dir.resolve("killed");
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Dorg.bytedeco.javacpp.cachedir=" + System.getProperty("org.bytedeco.javacpp.cachedir", "target/javacpp-cache"),
        "-cp", System.getProperty("java.class.path"), CheckpointSaver.class.getName(), checkpoints.toString())
        .redirectErrorStream(true).start();
    try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
      String line;
      while ((line = out.readLine()) != null && !line.equals("saved 2")) {
        // wait until two checkpoints exist
      }
      Thread.sleep(ThreadLocalRandom.current().nextInt(5, 60)); // most likely in the middle of a save
      p.destroyForcibly();
      assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    }
    Path latest = Checkpoints.latest(checkpoints).orElseThrow();
    try (Safetensors.Reader r = Safetensors.open(latest)) {
      assertEquals(4, r.entries().size(), "a complete checkpoint: value, both moments and the checksums");
      float v = r.floats("param.0")[4096 * 1024 - 1];
      String name = latest.getFileName().toString();
      assertEquals(Long.parseLong(name.substring(11, 21)), (long) v, "its data is the data of its step");
    }
  }

  // ---------------------------------------------------------------- refusals change nothing

  /** A two-layer LoRA MLP 16 → 32 → 8 of ranks r0 and r1, trained with momentum unloading on one batch. */
  private static final class Model implements AutoCloseable {
    final TensorScope scope;
    final Mlp mlp;
    final Trainer<Integer> trainer;

    Model(Backend backend, int r0, int r1, DType dtype, long steps) {
      scope = new TensorScope(backend);
      SplittableRandom rng = new SplittableRandom(3);
      Tensor w0 = scope.fromArray(TrainerTest.scaled(rng, 32 * 16, 0.5f), 32, 16, dtype);
      Tensor w1 = scope.fromArray(TrainerTest.scaled(rng, 8 * 32, 0.5f), 8, 32, dtype);
      mlp = new Mlp(List.of(LoraLinear.create(w0, null, config(r0), 0), LoraLinear.create(w1, null, config(r1), 1)));
      Tensor x = scope.fromArray(TrainerTest.scaled(rng, 24 * 16, 1f), 24, 16, dtype);
      Tensor target = scope.fromArray(TrainerTest.scaled(rng, 24 * 8, 1f), 24, 8, dtype);
      Tensor dout = scope.allocate(24, 8, dtype);
      trainer = Trainer.<Integer>builder(backend).lossFunction(batch -> {
        double loss = backend.mse(mlp.forward(x), target, dout);
        mlp.backward(dout);
        return loss;
      }).batches((step, micro) -> 0).adapters(Lora.adapters(mlp)).periodic(PeriodicLoraConfig.momentum(2, 0.3f))
          .schedule(LrSchedule.constant(1e-2)).steps(steps).build();
      trainer.run();
    }

    private static LoraConfig config(int r) {
      return LoraConfig.builder().r(r).alpha(2f * r).dropout(0.1f).seed(7).build();
    }

    @Override
    public void close() {
      trainer.close();
      mlp.close();
      scope.close();
    }
  }

  /** Every bit of a run's state: parameters, their compute copies, Adam moments, backbone weights, counters. */
  private static Map<String, String> state(Model m) {
    Map<String, String> out = new LinkedHashMap<>();
    AdamW optimizer = m.trainer.optimizer();
    for (Parameter p : optimizer.parameters()) {
      out.put(p.name(), bits(p.value()));
      out.put(p.name() + " compute copy", bits(p.computeCopy()));
      out.put(p.name() + " adam m", bits(optimizer.firstMoment(p)));
      out.put(p.name() + " adam v", bits(optimizer.secondMoment(p)));
    }
    for (LoraLinear l : m.mlp.loraLayers()) {
      out.put("layer" + l.layer() + ".weight", bits(l.weight()));
      out.put("layer" + l.layer() + " counters", l.adapter().step() + " " + l.adapter().generation() + " " + l.adapter().unloads());
    }
    out.put("steps", m.trainer.step() + " " + optimizer.steps());
    return out;
  }

  private static String bits(Tensor t) {
    float[] v = t.toFloatArray();
    int[] raw = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      raw[i] = Float.floatToRawIntBits(v[i]);
    }
    return Arrays.toString(raw);
  }

  /** Loading {@code file} into {@code m} is refused with a message holding {@code expected}, and m is unchanged. */
  private static CheckpointFormatException assertRefused(Model m, Path file, String... expected) {
    Map<String, String> before = state(m);
    CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> m.trainer.loadCheckpoint(file));
    assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
    for (String s : expected) {
      assertTrue(e.getMessage().contains(s), "'" + s + "' in: " + e.getMessage());
    }
    Map<String, String> after = state(m);
    for (String name : before.keySet()) {
      assertEquals(before.get(name), after.get(name), name + " is unchanged by the refused load");
    }
    return e;
  }

  /** Writes {@code from}'s tensors and edited metadata to {@code to}, with checksums that match the edit. */
  private static void rewrite(Path from, Path to, Consumer<Map<String, String>> edit) throws IOException {
    try (Safetensors.Reader r = Safetensors.open(from)) {
      Map<String, String> meta = new LinkedHashMap<>(r.metadata());
      edit.accept(meta);
      List<Safetensors.Entry> tensors = r.entries().stream().filter(e -> !e.name().equals(Checkpoints.CHECKSUMS))
          .toList();
      List<Safetensors.Spec> specs = tensors.stream().map(e -> new Safetensors.Spec(e.name(), e.dtype(), e.shape()))
          .toList();
      Checkpoints.write(to, specs, meta, w -> {
        for (Safetensors.Entry e : tensors) {
          w.write(r.data(e.name()));
        }
      });
    }
  }

  @Test
  void aCheckpointOfAModelThatDiffersOnlyInALaterLayerIsRefusedBeforeAnythingIsWritten() {
    Path file = dir.resolve("other.safetensors");
    try (Backend backend = new CpuBackend()) {
      try (Model other = new Model(backend, 4, 2, DType.F32, 3)) {
        other.trainer.saveCheckpoint(file);
      }
      try (Model live = new Model(backend, 4, 4, DType.F32, 5)) {
        assertRefused(live, file, "tensor 'param.2' (layer1.lora_A)", "shape [2, 32]", "this run's is [4, 32]");
      }
    }
  }

  @Test
  void aCheckpointOfAnotherDtypeIsRefused() {
    Path file = dir.resolve("f32.safetensors");
    try (Backend backend = new CpuBackend()) {
      try (Model other = new Model(backend, 4, 4, DType.F32, 3)) {
        other.trainer.saveCheckpoint(file);
      }
      try (Model live = new Model(backend, 4, 4, DType.BF16, 5)) {
        assertRefused(live, file, "tensor 'lora.layers.0.weight'", "dtype F32", "this run's is BF16");
      }
    }
  }

  @Test
  void corruptMetadataIsRefusedNamingTheField() throws IOException {
    Path good = dir.resolve("good.safetensors");
    List<Map.Entry<String, Consumer<Map<String, String>>>> cases = List.of(
        Map.entry("format", m -> m.remove("format")),
        Map.entry("step", m -> m.put("step", "fifteen")),
        Map.entry("step", m -> m.remove("step")),
        Map.entry("step", m -> m.put("step", "-1")),
        Map.entry("step", m -> m.put("step", "99999999999999999999")),
        Map.entry("optimizer_steps", m -> m.put("optimizer_steps", "-5")),
        Map.entry("unloads", m -> m.put("unloads", "1.5")),
        Map.entry("parameters", m -> m.put("parameters", "[1, 2, 3, 4]")),
        Map.entry("parameters", m -> m.remove("parameters")),
        Map.entry("adapters", m -> m.put("adapters", "[\"layers.1\", \"layers.0\"]")),
        Map.entry("adapters", m -> m.put("adapters", "[\"layers.0\"]")),
        Map.entry("adapters", m -> m.remove("adapters")),
        Map.entry("layer_counters", m -> m.put("layer_counters", "{\"a\": 1}")),
        Map.entry("layer_counters", m -> m.put("layer_counters", "[[1, 2, 3], [4, 5, 6]")),
        Map.entry("layer_counters[0]", m -> m.put("layer_counters", "[[1, 2], [4, 5, 6]]")),
        Map.entry("layer_counters[1]", m -> m.put("layer_counters", "[[1, 2, 3], 4]")),
        Map.entry("layer_counters[0][2]", m -> m.put("layer_counters", "[[1, 2, -3], [4, 5, 6]]")),
        Map.entry("layer_counters[0][0]", m -> m.put("layer_counters", "[[\"1\", 2, 3], [4, 5, 6]]")),
        Map.entry("layer_counters[1][1]", m -> m.put("layer_counters", "[[1, 2, 3], [4, 5.5, 6]]")),
        Map.entry("layer_counters[1][2]", m -> m.put("layer_counters", "[[1, 2, 3], [4, 5, 1e30]]")),
        Map.entry("layer_counters", m -> m.put("layer_counters", "[[1, 2, 3]]")),
        Map.entry("layer_counters", m -> m.remove("layer_counters")));
    try (Backend backend = new CpuBackend(); Model live = new Model(backend, 4, 4, DType.F32, 5)) {
      live.trainer.saveCheckpoint(good);
      int i = 0;
      for (Map.Entry<String, Consumer<Map<String, String>>> c : cases) {
        Path bad = dir.resolve("bad-" + i++ + ".safetensors");
        rewrite(good, bad, c.getValue());
        assertRefused(live, bad, "metadata field '" + c.getKey() + "'");
      }
    }
  }

  /** One flipped bit anywhere in the data, the metadata or the checksums themselves is found before loading. */
  @Test
  void aFlippedBitIsRefused() throws IOException {
    Path file = dir.resolve("flip.safetensors");
    try (Backend backend = new CpuBackend(); Model live = new Model(backend, 4, 4, DType.F32, 5)) {
      try (Model other = new Model(backend, 4, 4, DType.F32, 3)) {
        other.trainer.saveCheckpoint(file);
      }
      byte[] bytes = Files.readAllBytes(file);
      long dataStart = 8 + ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
      String header = new String(bytes, 8, (int) dataStart - 8, StandardCharsets.UTF_8);
      long step, param, checksums;
      try (Safetensors.Reader r = Safetensors.open(file)) {
        param = dataStart + r.entry("adam_v.3").begin() + 13;
        checksums = dataStart + r.entry(Checkpoints.CHECKSUMS).begin() + 6;
      }
      step = header.indexOf("\"step\": \"3\"") + 8 + 9; // "3" → "2": still valid metadata
      assertEquals('3', bytes[(int) step]);
      for (long at : new long[] {param, step, checksums}) {
        byte[] flipped = bytes.clone();
        flipped[(int) at] ^= 1;
        Path bad = dir.resolve("flipped-" + at + ".safetensors");
        Files.write(bad, flipped);
        assertRefused(live, bad, "checksum");
      }
      assertEquals(5, live.trainer.step());
      live.trainer.loadCheckpoint(file); // the unflipped file loads
      assertEquals(3, live.trainer.step());
    }
  }

  @Test
  void aCheckpointOfAnOlderFormatOrNoCheckpointAtAllIsRefused() throws IOException {
    Path file = dir.resolve("new.safetensors");
    try (Backend backend = new CpuBackend(); Model live = new Model(backend, 4, 4, DType.F32, 5)) {
      live.trainer.saveCheckpoint(file);
      Path old = dir.resolve("old.safetensors");
      try (Safetensors.Reader r = Safetensors.open(file)) {
        Map<String, String> meta = new LinkedHashMap<>(r.metadata());
        meta.put("format", "plora-checkpoint-1");
        List<Safetensors.Entry> tensors = r.entries().stream().filter(e -> !e.name().equals(Checkpoints.CHECKSUMS))
            .toList();
        try (Safetensors.Writer w = Safetensors.create(old, tensors.stream()
            .map(e -> new Safetensors.Spec(e.name(), e.dtype(), e.shape())).toList(), meta, false)) {
          for (Safetensors.Entry e : tensors) {
            w.write(r.data(e.name()));
          }
          w.commit();
        }
      }
      assertRefused(live, old, "metadata field 'format'", "plora-checkpoint-1", "without checksums");
      Path truncated = dir.resolve("truncated.safetensors");
      byte[] bytes = Files.readAllBytes(file);
      Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 1));
      assertRefused(live, truncated, "data section");
      Path weights = dir.resolve("weights.safetensors");
      Safetensors.writeFloats(weights, Map.of("w", new float[4]), Map.of("w", new long[] {2, 2}),
          Safetensors.Dtype.F32, Map.of("format", "pt"), false);
      assertRefused(live, weights, "not a plora checkpoint");
    }
  }
}
