package dev.plora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model folders of one file or of shards: validation before reading, and chunked, converting uploads. */
class HfCheckpointTest {
  private final SplittableRandom rng = new SplittableRandom(71);

  private Map<String, float[]> values(Map<String, long[]> shapes, DType dtype) {
    Map<String, float[]> v = new LinkedHashMap<>();
    shapes.forEach((name, shape) -> {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      v.put(name, Reference.random(rng, (int) n, dtype));
    });
    return v;
  }

  private static Map<String, long[]> shapes() {
    Map<String, long[]> s = new LinkedHashMap<>();
    s.put("model.embed_tokens.weight", new long[] {10, 6});
    s.put("model.norm.weight", new long[] {6});
    s.put("lm_head.weight", new long[] {10, 6});
    return s;
  }

  @Test
  void oneFileLoadsConvertingToTheDestinationsDtype(@TempDir Path dir) throws Exception {
    Map<String, long[]> shapes = shapes();
    Map<String, float[]> values = values(shapes, DType.BF16);
    Safetensors.writeFloats(dir.resolve(HfCheckpoint.SINGLE), values, shapes, Safetensors.Dtype.BF16, Map.of(), false);
    try (HfCheckpoint ckpt = HfCheckpoint.open(dir); Backend backend = Backends.create("cpu");
        TensorScope s = new TensorScope(backend)) {
      ckpt.requireExactly(shapes, name -> false);
      assertEquals(Map.of(HfCheckpoint.SINGLE, List.copyOf(shapes.keySet())), ckpt.shards());
      Tensor f32 = s.allocate(10, 6, DType.F32);
      ckpt.load("model.embed_tokens.weight", f32);
      assertArrayEquals(values.get("model.embed_tokens.weight"), f32.toFloatArray()); // BF16 -> F32 is exact
      Tensor norm = s.allocate(1, 6, DType.F16);
      ckpt.load("model.norm.weight", norm);
      float[] want = values.get("model.norm.weight").clone();
      for (int i = 0; i < want.length; i++) {
        want[i] = DType.F16.round(want[i]);
      }
      assertArrayEquals(want, norm.toFloatArray());
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> ckpt.load("lm_head.weight", s.allocate(6, 10, DType.F32)));
      assertTrue(e.getMessage().contains("[10, 6]") && e.getMessage().contains("[6,10]"), e.getMessage());
    }
  }

  @Test
  void shardsListedByTheIndexLoadAsOne(@TempDir Path dir) throws Exception {
    Map<String, long[]> shapes = shapes();
    Map<String, float[]> values = values(shapes, DType.F32);
    writeShards(dir, shapes, values);
    try (HfCheckpoint ckpt = HfCheckpoint.open(dir); Backend backend = Backends.create("cpu");
        TensorScope s = new TensorScope(backend)) {
      ckpt.requireExactly(shapes, name -> false);
      assertEquals(List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"),
          List.copyOf(ckpt.shards().keySet()));
      Tensor head = s.allocate(10, 6, DType.F32);
      ckpt.load("lm_head.weight", head);
      assertArrayEquals(values.get("lm_head.weight"), head.toFloatArray());
      assertTrue(ckpt.file("lm_head.weight").endsWith("model-00002-of-00002.safetensors"));
    }
  }

  @Test
  void aTensorLargerThanAChunkLoadsARowAtATime(@TempDir Path dir) throws Exception {
    int cols = HfCheckpoint.CHUNK_VALUES / 2 + 3; // two rows do not fit a chunk
    Map<String, long[]> shapes = Map.of("w", new long[] {3, cols});
    Map<String, float[]> values = values(shapes, DType.F32);
    Safetensors.writeFloats(dir.resolve(HfCheckpoint.SINGLE), values, shapes, Safetensors.Dtype.F32, Map.of(), false);
    try (HfCheckpoint ckpt = HfCheckpoint.open(dir); Backend backend = Backends.create("cpu");
        TensorScope s = new TensorScope(backend)) {
      Tensor w = s.allocate(3, cols, DType.F32);
      ckpt.load("w", w);
      assertArrayEquals(values.get("w"), w.toFloatArray());
    }
  }

  @Test
  void aFolderThatDoesNotFitIsRefusedNamingFileTensorAndShapes(@TempDir Path dir) throws Exception {
    Map<String, long[]> shapes = shapes();
    Safetensors.writeFloats(dir.resolve(HfCheckpoint.SINGLE), values(shapes, DType.F32), shapes,
        Safetensors.Dtype.F32, Map.of(), false);
    Map<String, long[]> expected = new LinkedHashMap<>(shapes);
    expected.put("model.norm.weight", new long[] {7});
    expected.put("model.layers.0.input_layernorm.weight", new long[] {6});
    expected.remove("lm_head.weight");
    try (HfCheckpoint ckpt = HfCheckpoint.open(dir)) {
      String m = assertThrows(IllegalArgumentException.class, () -> ckpt.requireExactly(expected, n -> false))
          .getMessage();
      assertTrue(m.contains("3 problems"), m);
      assertTrue(m.contains("model.safetensors: tensor 'model.norm.weight' has shape [6], expected [7]"), m);
      assertTrue(m.contains("tensor 'model.layers.0.input_layernorm.weight' [6] is missing"), m);
      assertTrue(m.contains("tensor 'lm_head.weight' [10, 6] is not used by the model"), m);
      expected.put("model.norm.weight", new long[] {6});
      expected.remove("model.layers.0.input_layernorm.weight");
      ckpt.requireExactly(expected, n -> n.equals("lm_head.weight")); // tied: the copy is ignorable
    }
  }

  @Test
  void brokenShardingIsRefusedNamingTheShard(@TempDir Path dir) throws Exception {
    Map<String, long[]> shapes = shapes();
    writeShards(dir, shapes, values(shapes, DType.F32));
    Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
    assertRefused(dir, "shard model-00002-of-00002.safetensors is missing");

    Files.writeString(dir.resolve(HfCheckpoint.INDEX), "{\"weight_map\": {\"lm_head.weight\": \"../x.safetensors\"}}");
    assertRefused(dir, "expected a file name in the model folder");

    Files.delete(dir.resolve(HfCheckpoint.INDEX));
    Files.delete(dir.resolve("model-00001-of-00002.safetensors"));
    assertRefused(dir, "no model.safetensors and no model.safetensors.index.json");

    writeShards(dir, shapes, values(shapes, DType.F32));
    Files.writeString(dir.resolve(HfCheckpoint.INDEX), "{\"weight_map\": {\"model.embed_tokens.weight\": "
        + "\"model-00001-of-00002.safetensors\", \"model.norm.weight\": \"model-00001-of-00002.safetensors\", "
        + "\"lm_head.weight\": \"model-00001-of-00002.safetensors\"}}");
    assertRefused(dir, "tensor 'lm_head.weight', listed in model.safetensors.index.json, is not in this shard");
  }

  @Test
  void writtenWeightsReadBackShardedAsGiven(@TempDir Path dir) throws Exception {
    Map<String, long[]> shapes = shapes();
    Map<String, float[]> values = values(shapes, DType.BF16);
    Map<String, List<String>> shards = new LinkedHashMap<>();
    shards.put("model-00001-of-00002.safetensors", List.of("model.embed_tokens.weight", "model.norm.weight"));
    shards.put("model-00002-of-00002.safetensors", List.of("lm_head.weight"));
    try (Backend backend = Backends.create("cpu"); TensorScope s = new TensorScope(backend)) {
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      values.forEach((name, v) -> {
        long[] shape = shapes.get(name);
        tensors.put(name, s.fromArray(v, shape.length == 1 ? 1 : (int) shape[0], (int) shape[shape.length - 1],
            DType.F32));
      });
      HfCheckpoint.write(dir.resolve("sharded"), shards, shapes, tensors, Safetensors.Dtype.BF16, false);
      try (HfCheckpoint back = HfCheckpoint.open(dir.resolve("sharded"))) {
        assertEquals(shards, back.shards());
        back.requireExactly(shapes, n -> false);
        for (String name : shapes.keySet()) {
          assertEquals(Safetensors.Dtype.BF16, back.entry(name).dtype());
          Tensor t = s.allocate(tensors.get(name).rows(), tensors.get(name).cols(), DType.F32);
          back.load(name, t);
          assertArrayEquals(values.get(name), t.toFloatArray(), name); // BF16 values survive BF16 exactly
        }
      }
      Object index = Json.parse(Files.readString(dir.resolve("sharded").resolve(HfCheckpoint.INDEX)));
      assertEquals(java.math.BigDecimal.valueOf(2L * (60 + 6 + 60)),
          ((Map<?, ?>) ((Map<?, ?>) index).get("metadata")).get("total_size"));
      try (Safetensors.Reader r = Safetensors.open(dir.resolve("sharded").resolve("model-00002-of-00002.safetensors"))) {
        assertEquals(Map.of("format", "pt"), r.metadata());
      }

      HfCheckpoint.write(dir.resolve("single"), Map.of(HfCheckpoint.SINGLE, List.copyOf(shapes.keySet())), shapes,
          tensors, Safetensors.Dtype.F32, false);
      assertTrue(Files.isRegularFile(dir.resolve("single").resolve(HfCheckpoint.SINGLE)));
      assertTrue(Files.notExists(dir.resolve("single").resolve(HfCheckpoint.INDEX)), "one file needs no index");

      Map<String, List<String>> missing = Map.of("model.safetensors", List.of("model.norm.weight", "nope.weight"));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> HfCheckpoint.write(dir.resolve("bad"), missing, shapes, tensors, Safetensors.Dtype.F32, false));
      assertTrue(e.getMessage().contains("nope.weight"), e.getMessage());
      assertTrue(Files.notExists(dir.resolve("bad")), "nothing is written before everything is checked");
    }
  }

  private static void assertRefused(Path dir, String mention) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HfCheckpoint.open(dir).close());
    assertTrue(e.getMessage().contains(mention), e.getMessage());
  }

  /** embed and norm in the first shard, lm_head in the second, and the index. */
  private static void writeShards(Path dir, Map<String, long[]> shapes, Map<String, float[]> values) throws Exception {
    String first = "model-00001-of-00002.safetensors", second = "model-00002-of-00002.safetensors";
    Map<String, float[]> a = new LinkedHashMap<>(values), b = new LinkedHashMap<>();
    b.put("lm_head.weight", a.remove("lm_head.weight"));
    Safetensors.writeFloats(dir.resolve(first), a, shapes, Safetensors.Dtype.F32, Map.of(), false);
    Safetensors.writeFloats(dir.resolve(second), b, shapes, Safetensors.Dtype.F32, Map.of(), false);
    Files.writeString(dir.resolve(HfCheckpoint.INDEX), "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {"
        + "\"model.embed_tokens.weight\": \"" + first + "\", \"model.norm.weight\": \"" + first + "\", "
        + "\"lm_head.weight\": \"" + second + "\"}}");
  }
}
