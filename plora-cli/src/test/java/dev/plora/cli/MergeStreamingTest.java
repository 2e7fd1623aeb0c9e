package dev.plora.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import dev.plora.io.Safetensors.Dtype;
import dev.plora.io.Safetensors.Spec;
import dev.plora.tensor.DType;
import dev.plora.testing.Reference;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code plora merge} streams every tensor in bounded chunks (so tensors over 2 GiB merge): small
 * chunks give the same bytes as one chunk per tensor, for copies, conversions, merges in every
 * output dtype, F64 merges and stochastic rounding.
 */
class MergeStreamingTest {
  @TempDir Path dir;
  private final long defaultChunk = MergeCommand.chunkBytes;

  @AfterEach
  void restoreTheChunkSize() {
    MergeCommand.chunkBytes = defaultChunk;
  }

  private static ByteBuffer randomValues(SplittableRandom rng, Dtype dtype, long count) {
    ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(count * dtype.size)).order(ByteOrder.LITTLE_ENDIAN);
    for (long i = 0; i < count; i++) {
      float v = (float) (rng.nextDouble() * 2 - 1);
      switch (dtype) {
        case F32 -> b.putFloat(v);
        case F64 -> b.putDouble(rng.nextDouble() * 2 - 1);
        case BF16 -> b.putShort(DType.floatToBf16(v));
        case I64 -> b.putLong(rng.nextLong());
        default -> throw new AssertionError(dtype);
      }
    }
    return b.flip();
  }

  private byte[] merge(Path base, Path adapter, long chunkBytes, String... extra) throws Exception {
    MergeCommand.chunkBytes = chunkBytes;
    Path out = dir.resolve("out-" + chunkBytes + ".safetensors");
    List<String> args = new ArrayList<>(List.of("merge", "--base", base.toString(), "--adapter", adapter.toString(),
        "--out", out.toString(), "--backend", "cpu", "--force"));
    args.addAll(List.of(extra));
    StringWriter o = new StringWriter(), e = new StringWriter();
    assertEquals(0, Main.run(new PrintWriter(o, true), new PrintWriter(e, true), args.toArray(String[]::new)),
        e.toString());
    return Files.readAllBytes(out);
  }

  @Test
  void smallChunksGiveTheBytesOfOneChunkPerTensor() throws Exception {
    SplittableRandom rng = new SplittableRandom(5);
    // "emb" spans several of stochastic rounding's random blocks (2^20 elements each)
    List<Spec> specs = List.of(new Spec("emb.weight", Dtype.BF16, new long[] {4500, 512}),
        new Spec("proj.weight", Dtype.F32, new long[] {300, 40}), new Spec("head.weight", Dtype.F64, new long[] {37, 19}),
        new Spec("norm.weight", Dtype.F32, new long[] {1000}), new Spec("ids", Dtype.I64, new long[] {100}));
    Path base = dir.resolve("base.safetensors");
    try (Safetensors.Writer w = Safetensors.create(base, specs, Map.of("format", "pt"), false)) {
      for (Spec s : specs) {
        long n = 1;
        for (long d : s.shape()) {
          n *= d;
        }
        w.write(randomValues(rng, s.dtype(), n));
      }
      w.commit();
    }
    List<PeftAdapter.Module> modules = new ArrayList<>();
    for (Spec s : specs.subList(0, 3)) {
      int outF = (int) s.shape()[0], in = (int) s.shape()[1], r = 3;
      modules.add(new PeftAdapter.Module(s.name().replace(".weight", ""), r, in, outF,
          Reference.random(rng, r * in, DType.F32), Reference.random(rng, outF * r, DType.F32)));
    }
    Path adapter = dir.resolve("adapter");
    PeftAdapter.write(adapter, new PeftAdapter.Config(3, 0.5, 0, false, List.of("emb", "proj", "head")), modules,
        false);

    long tiny = 1000; // under one row of "emb" and of "proj": a chunk per row (per random block when stochastic)
    assertArrayEquals(merge(base, adapter, 1L << 40), merge(base, adapter, tiny), "as in BASE");
    for (String dtype : new String[] {"f32", "bf16", "f16"}) {
      assertArrayEquals(merge(base, adapter, 1L << 40, "--dtype", dtype), merge(base, adapter, tiny, "--dtype", dtype),
          dtype);
    }
    byte[] stochastic = merge(base, adapter, 1L << 40, "--dtype", "bf16", "--rounding", "stochastic", "--seed", "9");
    assertArrayEquals(stochastic, merge(base, adapter, tiny, "--dtype", "bf16", "--rounding", "stochastic", "--seed",
        "9"), "stochastic rounding draws the same bits whatever the chunks");
    assertFalse(java.util.Arrays.equals(stochastic, merge(base, adapter, 1L << 40, "--dtype", "bf16")),
        "stochastic rounding took place");
  }
}
