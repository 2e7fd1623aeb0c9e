package dev.plora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.cli.Main;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PEFT adapters both ways, and {@code plora merge} / {@code plora inspect}. */
class PeftMergeTest {
  @TempDir Path dir;
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int plora(String... args) {
    return Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
  }

  private static PeftAdapter.Module module(SplittableRandom rng, String name, int r, int in, int outF) {
    return new PeftAdapter.Module(name, r, in, outF, Reference.random(rng, r * in, DType.F32),
        Reference.random(rng, outF * r, DType.F32));
  }

  @Test
  void adaptersRoundTripWithPeftKeysAndConfig() throws Exception {
    SplittableRandom rng = new SplittableRandom(1);
    List<PeftAdapter.Module> modules = List.of(module(rng, "model.layers.0.q_proj", 4, 12, 10),
        module(rng, "model.layers.0.v_proj", 4, 12, 6));
    PeftAdapter.Config config = new PeftAdapter.Config(4, 8, 0.05, false, List.of("q_proj", "v_proj"));
    Path adapter = dir.resolve("adapter");
    PeftAdapter.write(adapter, config, modules, false);
    String json = Files.readString(adapter.resolve(PeftAdapter.CONFIG));
    for (String field : new String[] {"\"peft_type\": \"LORA\"", "\"r\": 4", "\"lora_alpha\": 8", "\"lora_dropout\": 0.05",
        "\"target_modules\": [\"q_proj\", \"v_proj\"]", "\"use_rslora\": false", "\"bias\": \"none\"",
        "\"fan_in_fan_out\": false"}) {
      assertTrue(json.contains(field), field + " in " + json);
    }
    try (Safetensors.Reader r = Safetensors.open(adapter.resolve(PeftAdapter.WEIGHTS))) {
      assertEquals(Map.of("format", "pt"), r.metadata());
      assertArrayEquals(new long[] {4, 12}, r.entry("base_model.model.model.layers.0.q_proj.lora_A.weight").shape());
      assertArrayEquals(new long[] {10, 4}, r.entry("base_model.model.model.layers.0.q_proj.lora_B.weight").shape());
    }
    PeftAdapter back = PeftAdapter.read(adapter);
    assertEquals(2.0, back.config().scaling());
    for (PeftAdapter.Module m : modules) {
      assertArrayEquals(m.a(), back.modules().get(m.name()).a());
      assertArrayEquals(m.b(), back.modules().get(m.name()).b());
    }
  }

  /** An adapter folder as PEFT writes one: {@code config} (JSON) and the modules' A and B under PEFT's keys. */
  private Path adapterFolder(String name, String config, List<PeftAdapter.Module> modules) throws Exception {
    Path folder = dir.resolve(name);
    Files.createDirectories(folder);
    Files.writeString(folder.resolve(PeftAdapter.CONFIG), config);
    Map<String, float[]> values = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    for (PeftAdapter.Module m : modules) {
      values.put("base_model.model." + m.name() + ".lora_A.weight", m.a());
      shapes.put("base_model.model." + m.name() + ".lora_A.weight", new long[] {m.r(), m.in()});
      values.put("base_model.model." + m.name() + ".lora_B.weight", m.b());
      shapes.put("base_model.model." + m.name() + ".lora_B.weight", new long[] {m.out(), m.r()});
    }
    Safetensors.writeFloats(folder.resolve(PeftAdapter.WEIGHTS), values, shapes, Safetensors.Dtype.F32,
        Map.of("format", "pt"), false);
    return folder;
  }

  /** A base file holding one random [out, in] F32 weight per module, in module order. */
  private Map<String, float[]> baseFor(Path file, List<PeftAdapter.Module> modules, SplittableRandom rng)
      throws Exception {
    Map<String, float[]> values = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    for (PeftAdapter.Module m : modules) {
      values.put(m.name() + ".weight", Reference.random(rng, m.out() * m.in(), DType.F32));
      shapes.put(m.name() + ".weight", new long[] {m.out(), m.in()});
    }
    Safetensors.writeFloats(file, values, shapes, Safetensors.Dtype.F32, Map.of(), false);
    return values;
  }

  /**
   * PEFT picks each module's r and alpha from rank_pattern / alpha_pattern: the first key K for
   * which the module name full-matches the regex {@code (.*\.)?(K)}, else the global r and
   * lora_alpha; scaling is alpha / r (alpha / √r with rsLoRA).
   */
  @Test
  void rankAndAlphaPatternsGiveEachModuleItsScalingAsPeftDoes() throws Exception {
    for (boolean rslora : new boolean[] {false, true}) {
      SplittableRandom rng = new SplittableRandom(rslora ? 11 : 10);
      int in = 9, outF = 7;
      List<PeftAdapter.Module> modules = List.of(
          module(rng, "model.layers.0.self_attn.q_proj", 4, in, outF),   // alpha_pattern by name: 64
          module(rng, "model.layers.0.self_attn.v_proj", 2, in, outF),   // rank_pattern "v_proj": r = 2
          module(rng, "model.layers.1.self_attn.q_proj", 4, in, outF),   // no key matches
          module(rng, "model.layers.1.mlp.up_proj", 3, in, outF),        // regex keys for both
          module(rng, "model.layers.1.self_attn.o_proj", 4, in, outF));  // "proj" must not match "o_proj"
      String config = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_rslora\": " + rslora + ", "
          + "\"rank_pattern\": {\"v_proj\": 2, \"layers\\\\.1\\\\.mlp\\\\..*\": 3}, "
          + "\"alpha_pattern\": {\"layers.0.self_attn.q_proj\": 64, \"proj\": 1000, \"layers\\\\.1\\\\.mlp\\\\..*\": 12}}";
      Path adapter = adapterFolder("patterns-" + rslora, config, modules);
      Path base = dir.resolve("patterns-base-" + rslora + ".safetensors");
      Map<String, float[]> w = baseFor(base, modules, rng);
      Path merged = dir.resolve("patterns-merged-" + rslora + ".safetensors");
      assertEquals(0, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
          merged.toString(), "--backend", "cpu"), err.toString());
      double[][] alphaAndR = {{64, 4}, {8, 2}, {8, 4}, {12, 3}, {8, 4}};
      try (Safetensors.Reader res = Safetensors.open(merged)) {
        for (int i = 0; i < modules.size(); i++) {
          PeftAdapter.Module m = modules.get(i);
          double s = alphaAndR[i][0] / (rslora ? Math.sqrt(alphaAndR[i][1]) : alphaAndR[i][1]);
          double[] ref = Reference.gemm(false, m.b(), m.r(), false, m.a(), in, s, 1, w.get(m.name() + ".weight"), outF,
              in, m.r());
          double e = Reference.relativeError(res.floats(m.name() + ".weight"), ref);
          assertTrue(e <= 1e-6, m.name() + " (rslora " + rslora + "): relative error " + e + " against scaling " + s);
        }
      }
    }
  }

  @Test
  void aConfigWithoutLoraAlphaTakesPeftsDefaultOf8() throws Exception {
    SplittableRandom rng = new SplittableRandom(12);
    List<PeftAdapter.Module> modules = List.of(module(rng, "m", 2, 5, 3));
    Path adapter = adapterFolder("no-alpha", "{\"peft_type\": \"LORA\", \"r\": 2}", modules);
    assertEquals(4.0, PeftAdapter.read(adapter).config().scaling(), "alpha 8 / r 2");
    Path base = dir.resolve("no-alpha-base.safetensors");
    Map<String, float[]> w = baseFor(base, modules, rng);
    Path merged = dir.resolve("no-alpha-merged.safetensors");
    assertEquals(0, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
        merged.toString(), "--backend", "cpu"), err.toString());
    PeftAdapter.Module m = modules.get(0);
    double[] ref = Reference.gemm(false, m.b(), 2, false, m.a(), 5, 4.0, 1, w.get("m.weight"), 3, 5, 2);
    try (Safetensors.Reader res = Safetensors.open(merged)) {
      assertTrue(Reference.relativeError(res.floats("m.weight"), ref) <= 1e-6);
    }
  }

  /** Configs whose merge is not W + s·B·A are refused, naming the field; shapes that do not fit name rank_pattern. */
  @Test
  void adaptersThatAreNotPlainLoraAreRefusedByFieldName() throws Exception {
    SplittableRandom rng = new SplittableRandom(13);
    List<PeftAdapter.Module> modules = List.of(module(rng, "layers.0.q_proj", 2, 5, 3));
    Path base = dir.resolve("variants-base.safetensors");
    baseFor(base, modules, rng);
    String[][] cases = {
        {"\"peft_type\": \"LOHA\"", "peft_type"},
        {"\"use_dora\": true", "use_dora"},
        {"\"fan_in_fan_out\": true", "fan_in_fan_out"},
        {"\"lora_bias\": true", "lora_bias"},
        {"\"use_qalora\": true", "use_qalora"},
        {"\"alora_invocation_tokens\": [1, 2]", "alora_invocation_tokens"},
        {"\"layer_replication\": [[0, 1]]", "layer_replication"},
        {"\"modules_to_save\": [\"score\"]", "modules_to_save"},
        {"\"trainable_token_indices\": [3]", "trainable_token_indices"},
        {"\"init_lora_weights\": \"pissa_niter_4\"", "init_lora_weights"},
        {"\"init_lora_weights\": \"olora\"", "init_lora_weights"},
        {"\"rank_pattern\": {\"q_proj\": 3}", "rank_pattern"},
        {"\"r\": 3", "rank_pattern"},
        {"\"alpha_pattern\": {\"q_proj(\": 3}", "alpha_pattern"},
    };
    for (String[] c : cases) {
      String config = c[0].startsWith("\"peft_type\"") || c[0].startsWith("\"r\"")
          ? "{" + c[0] + (c[0].startsWith("\"r\"") ? ", \"peft_type\": \"LORA\"" : ", \"r\": 2") + "}"
          : "{\"peft_type\": \"LORA\", \"r\": 2, " + c[0] + "}";
      Path adapter = adapterFolder("variant-" + Math.abs(c[0].hashCode()), config, modules);
      Path merged = dir.resolve("variant.safetensors");
      err.getBuffer().setLength(0);
      assertEquals(2, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
          merged.toString(), "--backend", "cpu"), config);
      assertTrue(err.toString().contains(c[1]) && err.toString().strip().lines().count() == 1,
          config + " should be refused naming " + c[1] + ": " + err);
      assertFalse(Files.exists(merged));
    }
    // bias "all" / "lora_only" saves the trained biases with the adapter: those are refused, naming bias
    Path withBias = adapterFolder("with-bias", "{\"peft_type\": \"LORA\", \"r\": 2, \"bias\": \"lora_only\"}", modules);
    Safetensors.writeFloats(withBias.resolve(PeftAdapter.WEIGHTS), Map.of(
        "base_model.model.layers.0.q_proj.lora_A.weight", modules.get(0).a(),
        "base_model.model.layers.0.q_proj.lora_B.weight", modules.get(0).b(),
        "base_model.model.layers.0.q_proj.bias", new float[3]), Map.of(
        "base_model.model.layers.0.q_proj.lora_A.weight", new long[] {2, 5},
        "base_model.model.layers.0.q_proj.lora_B.weight", new long[] {3, 2},
        "base_model.model.layers.0.q_proj.bias", new long[] {3}), Safetensors.Dtype.F32, Map.of(), true);
    err.getBuffer().setLength(0);
    assertEquals(2, plora("merge", "--base", base.toString(), "--adapter", withBias.toString(), "--out",
        dir.resolve("variant.safetensors").toString(), "--backend", "cpu"));
    assertTrue(err.toString().contains("bias is \"lora_only\""), err.toString());
    // the plain-LoRA forms of the same fields merge, and so does bias "all" of a model without biases
    Path adapter = adapterFolder("plain", "{\"peft_type\": \"LORA\", \"r\": 2, \"use_dora\": false, "
        + "\"fan_in_fan_out\": false, \"bias\": \"all\", \"lora_bias\": false, \"use_qalora\": false, "
        + "\"alora_invocation_tokens\": null, \"layer_replication\": null, \"modules_to_save\": null, "
        + "\"trainable_token_indices\": null, \"init_lora_weights\": \"gaussian\", \"rank_pattern\": {}, "
        + "\"alpha_pattern\": {}}", modules);
    assertEquals(0, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
        dir.resolve("plain.safetensors").toString(), "--backend", "cpu"), err.toString());
  }

  @Test
  void mergeEqualsWPlusScaledBAAndInspectListsTheFile() throws Exception {
    SplittableRandom rng = new SplittableRandom(2);
    int in = 33, outF = 17, r = 3;
    float[] w = Reference.random(rng, outF * in, DType.F32);
    float[] other = Reference.random(rng, 5, DType.F32);
    Path base = dir.resolve("base.safetensors");
    Map<String, float[]> values = new LinkedHashMap<>();
    values.put("layer.weight", w);
    values.put("layer.bias", other);
    Safetensors.writeFloats(base, values, Map.of("layer.weight", new long[] {outF, in}, "layer.bias", new long[] {5}),
        Safetensors.Dtype.F32, Map.of("format", "pt"), false);
    PeftAdapter.Module m = module(rng, "layer", r, in, outF);
    Path adapter = dir.resolve("adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(r, 6, 0, false, List.of("layer")), List.of(m), false);

    for (String type : new String[] {"f32", "bf16"}) {
      Path merged = dir.resolve("merged-" + type + ".safetensors");
      assertEquals(0, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
          merged.toString(), "--dtype", type, "--backend", "cpu"), err.toString());
      double[] ref = Reference.gemm(false, m.b(), r, false, m.a(), in, 2.0, 1, w, outF, in, r);
      try (Safetensors.Reader res = Safetensors.open(merged)) {
        double err2 = Reference.relativeError(res.floats("layer.weight"), ref);
        assertTrue(err2 <= (type.equals("f32") ? 1e-6 : 4e-3), type + ": relative error " + err2);
        assertEquals(type.equals("f32") ? Safetensors.Dtype.F32 : Safetensors.Dtype.BF16, res.entry("layer.bias").dtype());
      }
    }
    Path merged = dir.resolve("merged-f32.safetensors");
    byte[] before = Files.readAllBytes(merged);
    assertEquals(2, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
        merged.toString()));
    assertTrue(err.toString().contains("exists") && err.toString().contains("--force"), err.toString());
    assertArrayEquals(before, Files.readAllBytes(merged), "never overwritten without --force");

    out.getBuffer().setLength(0);
    assertEquals(0, plora("inspect", merged.toString()));
    assertTrue(out.toString().contains("layer.weight") && out.toString().contains("[17, 33]")
        && out.toString().contains("2244") && out.toString().contains("metadata format = pt"), out.toString());
    Path broken = dir.resolve("broken.safetensors");
    Files.write(broken, new byte[] {1, 2});
    err.getBuffer().setLength(0);
    assertEquals(2, plora("inspect", broken.toString()));
    assertTrue(err.toString().contains("truncated") && err.toString().lines().count() == 1, err.toString());
    assertEquals(2, plora("inspect", dir.resolve("missing.safetensors").toString()));
  }

  @Test
  void nonFiniteMergesAreRefusedAndWriteNothing() throws Exception {
    Path base = dir.resolve("base.safetensors");
    Safetensors.writeFloats(base, Map.of("m.weight", new float[] {1, 2, 3, 4}), Map.of("m.weight", new long[] {2, 2}),
        Safetensors.Dtype.F32, Map.of(), false);
    Path adapter = dir.resolve("adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(1, 1, 0, false, List.of("m")),
        List.of(new PeftAdapter.Module("m", 1, 2, 2, new float[] {1, Float.NaN}, new float[] {1, 1})), false);
    Path outFile = dir.resolve("out.safetensors");
    assertEquals(2, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
        outFile.toString(), "--backend", "cpu"));
    assertTrue(err.toString().contains("non-finite"), err.toString());
    assertFalse(Files.exists(outFile), "nothing written");
    try (var files = Files.list(dir)) {
      assertFalse(files.anyMatch(p -> p.toString().endsWith(".tmp")));
    }
  }

  /** A file of raw tensors: each spec's bytes, little-endian. */
  private static void rawFile(Path file, List<Safetensors.Spec> specs, List<ByteBuffer> data) throws Exception {
    try (Safetensors.Writer w = Safetensors.create(file, specs, Map.of(), false)) {
      for (ByteBuffer b : data) {
        w.write(b.flip());
      }
      w.commit();
    }
  }

  private static ByteBuffer buffer(int bytes) {
    return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  private Path smallAdapter(String name) throws Exception {
    Path folder = dir.resolve(name);
    PeftAdapter.write(folder, new PeftAdapter.Config(1, 1, 0, false, List.of("m")),
        List.of(new PeftAdapter.Module("m", 1, 2, 2, new float[] {0.5f, 0.25f}, new float[] {1, -1})), false);
    return folder;
  }

  private static byte[] bytesOf(Safetensors.Reader r, String name) throws Exception {
    ByteBuffer b = r.data(name);
    byte[] out = new byte[b.remaining()];
    b.get(out);
    return out;
  }

  /**
   * Untouched tensors converted to a narrower dtype follow the merged tensors' rule: a finite
   * value that would be written as ±Inf is refused, naming the tensor, and nothing is written.
   * Values already NaN or infinite in BASE are carried over (bit for bit when the dtype stays).
   */
  @Test
  void conversionsThatWouldOverflowAreRefusedAndNonFiniteBaseValuesAreCarriedOver() throws Exception {
    Path adapter = smallAdapter("small");
    ByteBuffer m = buffer(16).putFloat(1).putFloat(2).putFloat(3).putFloat(4);
    ByteBuffer big = buffer(8).putFloat(1).putFloat(3e38f);
    Path base = dir.resolve("big.safetensors");
    rawFile(base, List.of(new Safetensors.Spec("m.weight", Safetensors.Dtype.F32, new long[] {2, 2}),
        new Safetensors.Spec("big", Safetensors.Dtype.F32, new long[] {2})), List.of(m, big));
    ByteBuffer m64 = buffer(32).putDouble(1).putDouble(2).putDouble(3).putDouble(4);
    ByteBuffer huge = buffer(8).putDouble(1e300);
    Path base64 = dir.resolve("huge.safetensors");
    rawFile(base64, List.of(new Safetensors.Spec("m.weight", Safetensors.Dtype.F64, new long[] {2, 2}),
        new Safetensors.Spec("huge", Safetensors.Dtype.F64, new long[] {1})), List.of(m64, huge));
    Path outFile = dir.resolve("out.safetensors");
    for (String[] c : new String[][] {{base.toString(), "f16", "'big'"}, {base.toString(), "bf16", ""},
        {base64.toString(), "f32", "'huge'"}, {base64.toString(), "bf16", "'huge'"}}) {
      err.getBuffer().setLength(0);
      int code = plora("merge", "--base", c[0], "--adapter", adapter.toString(), "--out", outFile.toString(),
          "--dtype", c[1], "--backend", "cpu", "--force");
      if (c[2].isEmpty()) { // 3e38 fits bf16's range
        assertEquals(0, code, err.toString());
        Files.delete(outFile);
        continue;
      }
      assertEquals(2, code, c[1] + ": " + err);
      assertTrue(err.toString().contains(c[2]) && err.toString().contains("finite"), err.toString());
      assertFalse(Files.exists(outFile), "nothing written");
      try (var files = Files.list(dir)) {
        assertFalse(files.anyMatch(p -> p.toString().endsWith(".tmp")));
      }
    }

    int payloadNan = 0x7fc00123;
    ByteBuffer odd = buffer(16).putInt(payloadNan).putFloat(Float.POSITIVE_INFINITY)
        .putFloat(Float.NEGATIVE_INFINITY).putFloat(-0f);
    Path oddBase = dir.resolve("odd.safetensors");
    rawFile(oddBase, List.of(new Safetensors.Spec("m.weight", Safetensors.Dtype.F32, new long[] {2, 2}),
        new Safetensors.Spec("odd", Safetensors.Dtype.F32, new long[] {4})), List.of(buffer(16).putFloat(1).putFloat(2).putFloat(3).putFloat(4), odd));
    assertEquals(0, plora("merge", "--base", oddBase.toString(), "--adapter", adapter.toString(), "--out",
        outFile.toString(), "--backend", "cpu"), err.toString());
    try (Safetensors.Reader in = Safetensors.open(oddBase); Safetensors.Reader res = Safetensors.open(outFile)) {
      assertArrayEquals(bytesOf(in, "odd"), bytesOf(res, "odd"), "copied bit for bit");
    }
    assertEquals(0, plora("merge", "--base", oddBase.toString(), "--adapter", adapter.toString(), "--out",
        outFile.toString(), "--backend", "cpu", "--dtype", "f16", "--force"), err.toString());
    try (Safetensors.Reader res = Safetensors.open(outFile)) {
      float[] v = res.floats("odd");
      assertTrue(Float.isNaN(v[0]));
      assertEquals(Float.POSITIVE_INFINITY, v[1]);
      assertEquals(Float.NEGATIVE_INFINITY, v[2]);
      assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(v[3]));
    }
  }

  /** An F64 base is merged in F64: W + s·B·A to double precision, not fp32's. */
  @Test
  void f64BasesAreMergedInF64() throws Exception {
    SplittableRandom rng = new SplittableRandom(14);
    int in = 6, outF = 5, r = 2;
    double[] w = new double[outF * in];
    ByteBuffer wb = buffer(8 * w.length);
    for (int i = 0; i < w.length; i++) {
      w[i] = 1 + (i + 1) * 1e-12; // distinct in double, all 1.0f in float
      wb.putDouble(w[i]);
    }
    Path base = dir.resolve("f64.safetensors");
    rawFile(base, List.of(new Safetensors.Spec("m.weight", Safetensors.Dtype.F64, new long[] {outF, in})),
        List.of(wb));
    PeftAdapter.Module m = module(rng, "m", r, in, outF);
    Path adapter = dir.resolve("f64-adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(r, 6, 0, false, List.of("m")), List.of(m), false);
    Path merged = dir.resolve("f64-merged.safetensors");
    assertEquals(0, plora("merge", "--base", base.toString(), "--adapter", adapter.toString(), "--out",
        merged.toString(), "--backend", "cpu"), err.toString());
    try (Safetensors.Reader res = Safetensors.open(merged)) {
      assertEquals(Safetensors.Dtype.F64, res.entry("m.weight").dtype());
      ByteBuffer got = res.data("m.weight");
      for (int i = 0; i < outF; i++) {
        for (int t = 0; t < in; t++) {
          double delta = 0;
          for (int j = 0; j < r; j++) {
            delta += (double) m.b()[i * r + j] * m.a()[j * in + t];
          }
          double expected = w[i * in + t] + 3.0 * delta;
          double actual = got.getDouble();
          assertEquals(expected, actual, 4 * Math.ulp(expected), "element [" + i + ", " + t + "]");
        }
      }
    }
  }

  /** 48 MiB of weights merged in a JVM with a 32 MiB heap: memory is bounded by one tensor. */
  @Test
  void mergeMemoryIsBoundedByTheLargestTensor() throws Exception {
    int n = 1024;
    Map<String, float[]> values = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    SplittableRandom rng = new SplittableRandom(3);
    for (int i = 0; i < 12; i++) {
      values.put("l" + i + ".weight", Reference.random(rng, n * n, DType.F32));
      shapes.put("l" + i + ".weight", new long[] {n, n});
    }
    Path base = dir.resolve("big.safetensors");
    Safetensors.writeFloats(base, values, shapes, Safetensors.Dtype.F32, Map.of(), false);
    values.clear();
    Path adapter = dir.resolve("adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(4, 4, 0, false, List.of("l0", "l7")),
        List.of(module(rng, "l0", 4, n, n), module(rng, "l7", 4, n, n)), false);
    Path outFile = dir.resolve("merged.safetensors");
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx32m",
        "-Dorg.bytedeco.javacpp.cachedir=" + System.getProperty("org.bytedeco.javacpp.cachedir", "target/javacpp-cache"),
        "-cp", System.getProperty("java.class.path"), "dev.plora.cli.Main", "merge", "--base", base.toString(),
        "--adapter", adapter.toString(), "--out", outFile.toString(), "--backend", "cpu").redirectErrorStream(true).start();
    String log = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(120, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), log);
    assertTrue(Files.size(base) > 48L << 20, "the file is larger than the child's heap");
    try (Safetensors.Reader merged = Safetensors.open(outFile)) {
      assertEquals(12, merged.entries().size(), "every tensor written");
    }
  }
}
