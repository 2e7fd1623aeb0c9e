package dev.plora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.Rounding;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.demo.Spectrum;
import dev.plora.linalg.Svd;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Exporting a layer whose update has rank 3r after three FULL unloads. */
class PloraExportTest {
  @TempDir Path dir;

  @Test
  void mergedWeightsAndLowRankAdapterOfAHighRankUpdate() throws Exception {
    SplittableRandom rng = new SplittableRandom(9);
    int n = 48, k = 40, r = 4;
    try (Backend backend = new CpuBackend(); Tensor w = backend.fromArray(Reference.random(rng, n * k, DType.F32), n, k,
        DType.F32); LoraLinear layer = LoraLinear.create(w, null, LoraConfig.builder().r(r).alpha(r).build(), 0)) {
      float[] w0 = w.toFloatArray();
      for (int stage = 0; stage < 3; stage++) { // three stages of random adapters, each unloaded
        layer.adapter().masterB().copyFrom(Reference.random(rng, n * r, DType.F32));
        layer.adapter().sync();
        layer.adapter().unloadFull(Rounding.NEAREST);
      }
      layer.adapter().masterB().copyFrom(Reference.random(rng, n * r, DType.F32)); // and a live adapter
      layer.adapter().sync();
      Map<String, LoraLinear> modules = Map.of("model.proj", layer);

      Path merged = dir.resolve("merged.safetensors");
      PloraExport.mergedWeights(modules, merged, false);
      float[] delta;
      try (Tensor d = layer.adapter().deltaWeight()) {
        delta = d.toFloatArray();
      }
      double[] expected = new double[n * k];
      double[] update = new double[n * k];
      float[] weight = layer.weight().toFloatArray();
      for (int i = 0; i < expected.length; i++) {
        expected[i] = (double) weight[i] + delta[i];
        update[i] = expected[i] - w0[i];
      }
      try (Safetensors.Reader file = Safetensors.open(merged)) {
        assertTrue(Reference.relativeError(file.floats("model.proj.weight"), expected) <= 1e-6);
      }
      double[] sv = Svd.singularValues(update, n, k);
      assertEquals(4 * r, Spectrum.rankAbove(sv, 1e-6), "three unloads and a live adapter: rank 4r");

      for (int rank : new int[] {2 * r, 4 * r}) {
        Path adapterDir = dir.resolve("rank" + rank);
        Map<String, float[]> original = new LinkedHashMap<>(Map.of("model.proj", w0));
        double error = PloraExport.lowRankAdapter(modules, original, rank, 1, adapterDir, false).get("model.proj");
        double tail = 0, all = 0;
        for (int i = 0; i < sv.length; i++) {
          all += sv[i] * sv[i];
          tail += i >= rank ? sv[i] * sv[i] : 0;
        }
        double best = Math.sqrt(tail / all); // Eckart–Young: the best rank-R error
        assertEquals(best, error, 1e-3 + 0.02 * best, "rank " + rank + ": randomized SVD near the optimum");
        PeftAdapter back = PeftAdapter.read(adapterDir);
        assertEquals(1.0, back.config().scaling());
        PeftAdapter.Module m = back.modules().get("model.proj");
        double[] approx = Reference.gemm(false, m.b(), rank, false, m.a(), k, 1, 0, null, n, k, rank);
        float[] diff = new float[n * k];
        for (int i = 0; i < diff.length; i++) {
          diff[i] = (float) (update[i] - approx[i]);
        }
        double reported = Math.sqrt(sumSq(diff) / all);
        assertEquals(error, reported, 1e-5, "the reported error is the adapter's");
        assertArrayEquals(new int[] {rank, k, n}, new int[] {m.r(), m.in(), m.out()});
      }
    }
  }

  private static double sumSq(float[] v) {
    double s = 0;
    for (float f : v) {
      s += (double) f * f;
    }
    return s;
  }
}
