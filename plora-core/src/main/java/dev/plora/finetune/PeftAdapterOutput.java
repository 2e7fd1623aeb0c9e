package dev.plora.finetune;

import dev.plora.io.HfCheckpoint;
import dev.plora.io.PeftAdapter;
import dev.plora.io.PloraExport;
import dev.plora.lora.LoraAdapter;
import dev.plora.lora.LoraLinear;
import dev.plora.model.Linear;
import dev.plora.model.Module;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** A run's PEFT adapters: the trained one (LoRA), or one fitted to a merged run's update. */
final class PeftAdapterOutput {
  private PeftAdapterOutput() {}

  /** The trained adapters as a PEFT folder in the run's output folder. */
  static void save(FineTuneSettings s, LlamaForCausalLM model, Map<String, LoraAdapter> adapters) throws IOException {
    PeftAdapter.save(s.out(), adapters, targetModules(model, adapters.keySet()),
        PeftAdapter.Origin.causalLm(s.model().toString()), true);
  }

  /**
   * Fits a rank-R adapter to each targeted projection's update W_now − W_base (W_base read again
   * from the model folder, one module at a time) by truncated SVD, writes it to {@code dir} with
   * lora_alpha = r (scaling 1) and returns each module's relative error ‖ΔW − B·A‖_F / ‖ΔW‖_F.
   */
  static Map<String, Double> fitToUpdate(FineTuneSettings s, LlamaForCausalLM model, Path dir) throws IOException {
    int rank = s.exportRank();
    Map<String, Double> errors = new LinkedHashMap<>();
    List<PeftAdapter.Module> modules = new ArrayList<>();
    try (HfCheckpoint base = HfCheckpoint.open(s.model())) {
      for (Map.Entry<String, Module> e : model.modules().entrySet()) {
        String path = e.getKey();
        boolean adapted = e.getValue() instanceof LoraLinear;
        boolean trained = e.getValue() instanceof Linear && s.method() == Method.FULL
            && s.lora().targets(path, path.equals(model.outputHead()));
        if (!adapted && !trained) {
          continue;
        }
        float[] now;
        int rows, cols;
        if (e.getValue() instanceof LoraLinear l) {
          rows = l.outFeatures();
          cols = l.inFeatures();
          try (Tensor w = l.effectiveWeight()) {
            now = w.toFloatArray();
          }
        } else {
          Tensor w = ((Linear) e.getValue()).weight();
          rows = w.rows();
          cols = w.cols();
          now = w.toFloatArray();
        }
        if (rank > Math.min(rows, cols)) {
          throw new IllegalArgumentException("export_rank: " + rank + " exceeds module '" + path + "' [" + rows + ", "
              + cols + "]");
        }
        double[] delta = new double[now.length];
        try (Tensor w0 = model.backend().allocate(rows, cols, DType.F32)) {
          base.load(path + ".weight", w0);
          float[] before = w0.toFloatArray();
          for (int i = 0; i < delta.length; i++) {
            delta[i] = (double) now[i] - before[i];
          }
        }
        modules.add(PloraExport.fit(path, delta, rows, cols, rank, s.seed(), errors));
      }
    }
    if (modules.isEmpty()) {
      throw new IllegalArgumentException("export_rank: no module of the model is targeted by " + s.lora()
          .targetModules());
    }
    List<String> paths = modules.stream().map(PeftAdapter.Module::name).toList();
    PeftAdapter.write(dir, new PeftAdapter.Config(rank, rank, 0, false, targetModules(model, paths)), modules,
        PeftAdapter.Origin.causalLm(s.model().toString()), true);
    return errors;
  }

  /**
   * target_modules as PEFT reads them back: the modules' short names ("q_proj", ...) when those
   * name exactly the adapted modules, else their full paths.
   */
  static List<String> targetModules(LlamaForCausalLM model, java.util.Collection<String> paths) {
    TreeSet<String> names = new TreeSet<>();
    for (String p : paths) {
      names.add(p.substring(p.lastIndexOf('.') + 1));
    }
    for (Map.Entry<String, Module> e : model.modules().entrySet()) {
      String p = e.getKey();
      boolean projection = e.getValue() instanceof Linear || e.getValue() instanceof LoraLinear;
      if (projection && names.contains(p.substring(p.lastIndexOf('.') + 1)) && !paths.contains(p)) {
        return List.copyOf(paths); // a short name would also adapt this module
      }
    }
    return List.copyOf(names);
  }
}
