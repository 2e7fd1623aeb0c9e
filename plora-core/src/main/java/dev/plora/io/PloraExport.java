package dev.plora.io;

import dev.plora.linalg.LowRank;
import dev.plora.lora.LoraLinear;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Exports a PLoRA result, whose accumulated update W_final − W₀ is high-rank: as merged full
 * weights, or as a rank-R PEFT adapter fitted to the update by truncated randomized SVD.
 */
public final class PloraExport {
  private PloraExport() {}

  /**
   * Writes {@code <module>.weight} = W + s·B·A (and {@code <module>.bias}) of every layer, in
   * the layers' dtype, atomically.
   */
  public static void mergedWeights(Map<String, LoraLinear> modules, Path file, boolean overwrite) throws IOException {
    List<Safetensors.Spec> specs = new ArrayList<>();
    for (Map.Entry<String, LoraLinear> e : modules.entrySet()) {
      LoraLinear l = e.getValue();
      Safetensors.Dtype type = Safetensors.Dtype.of(l.dtype());
      specs.add(new Safetensors.Spec(e.getKey() + ".weight", type, new long[] {l.outFeatures(), l.inFeatures()}));
      if (l.bias() != null) {
        specs.add(new Safetensors.Spec(e.getKey() + ".bias", type, new long[] {l.outFeatures()}));
      }
    }
    try (Safetensors.Writer w = Safetensors.create(file, specs, Map.of("format", "pt"), overwrite)) {
      for (LoraLinear l : modules.values()) {
        w.write(effectiveWeight(l));
        if (l.bias() != null) {
          w.write(l.bias().toFloatArray());
        }
      }
      w.commit();
    }
  }

  /**
   * Fits a rank-{@code rank} PEFT adapter to each module's W_final − W₀ ({@code original} holds
   * W₀ [out, in] row-major per module) and writes it to {@code dir} with lora_alpha = r (scaling
   * 1). Returns each module's relative approximation error ‖ΔW − B·A‖_F / ‖ΔW‖_F.
   */
  public static Map<String, Double> lowRankAdapter(Map<String, LoraLinear> modules, Map<String, float[]> original,
      int rank, long seed, Path dir, boolean overwrite) throws IOException {
    List<PeftAdapter.Module> out = new ArrayList<>();
    Map<String, Double> errors = new LinkedHashMap<>();
    for (Map.Entry<String, LoraLinear> e : modules.entrySet()) {
      LoraLinear l = e.getValue();
      float[] w0 = original.get(e.getKey());
      int rows = l.outFeatures(), cols = l.inFeatures();
      if (w0 == null || w0.length != rows * cols) {
        throw new IllegalArgumentException("original weight of '" + e.getKey() + "': expected " + rows * cols
            + " values, got " + (w0 == null ? "none" : w0.length));
      }
      float[] w = effectiveWeight(l);
      double[] delta = new double[w.length];
      for (int i = 0; i < w.length; i++) {
        delta[i] = (double) w[i] - w0[i];
      }
      out.add(fit(e.getKey(), delta, rows, cols, rank, seed, errors));
    }
    PeftAdapter.write(dir, new PeftAdapter.Config(rank, rank, 0, false, List.copyOf(modules.keySet())), out, overwrite);
    return errors;
  }

  /**
   * A rank-{@code rank} PEFT module (scaling 1) fitted to one module's update {@code delta} [rows,
   * cols] by truncated SVD; its relative error goes into {@code errors} under its name.
   */
  public static PeftAdapter.Module fit(String module, double[] delta, int rows, int cols, int rank, long seed,
      Map<String, Double> errors) {
    LowRank.Factors f = LowRank.truncatedSvd(delta, rows, cols, rank, seed);
    errors.put(module, f.relativeError());
    return new PeftAdapter.Module(module, rank, cols, rows, toFloat(f.a()), toFloat(f.b()));
  }

  /** W + s·B·A as fp32, row-major. */
  private static float[] effectiveWeight(LoraLinear l) {
    try (Tensor w = l.effectiveWeight()) {
      return w.toFloatArray();
    }
  }

  private static float[] toFloat(double[] v) {
    float[] f = new float[v.length];
    for (int i = 0; i < v.length; i++) {
      f[i] = (float) v[i];
    }
    return f;
  }
}
