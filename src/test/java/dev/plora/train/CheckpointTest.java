package dev.plora.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.io.Safetensors;
import dev.plora.lora.LoraLinear;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.train.TrainerTest.Batch;
import dev.plora.train.TrainerTest.Recorder;
import dev.plora.train.TrainerTest.Task;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
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
      out.add(l.masterA().toFloatArray());
      out.add(l.masterB().toFloatArray());
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
      assertEquals(3, r.entries().size(), "a complete checkpoint: value and both moments");
      float v = r.floats("param.0")[4096 * 1024 - 1];
      String name = latest.getFileName().toString();
      assertEquals(Long.parseLong(name.substring(11, 21)), (long) v, "its data is the data of its step");
    }
  }
}
