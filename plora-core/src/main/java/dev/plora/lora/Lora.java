package dev.plora.lora;

import dev.plora.model.Linear;
import dev.plora.model.Module;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** LoRA adapters put into a model by module name, as PEFT's {@code inject_adapter_in_model} does. */
public final class Lora {
  private Lora() {}

  /**
   * Wraps every frozen {@link Linear} of {@code model} that {@code config} targets in a {@link
   * LoraLinear} with that module's r and alpha (from the rank and alpha patterns), in place, and
   * returns their adapters by module path, in model order ({@code model.module(path)} is the
   * layer). The n-th adapter keys its random streams with n. A config that matches no linear module is refused, naming its targets
   * and some module paths that exist; nothing is changed then.
   */
  public static Map<String, LoraAdapter> inject(Module model, LoraConfig config) {
    if (model == null) {
      throw new IllegalArgumentException("model: must not be null");
    }
    if (config == null) {
      throw new IllegalArgumentException("config: must not be null");
    }
    if (config.targetModules().isEmpty() && config.targetModulesRegex() == null) {
      throw new IllegalArgumentException("config: targetModules is not set (names, a regex, or "
          + LoraConfig.ALL_LINEAR + ")");
    }
    String head = model.outputHead();
    List<String> targets = new ArrayList<>();
    List<String> linears = new ArrayList<>();
    for (Map.Entry<String, Module> e : model.modules().entrySet()) {
      String path = e.getKey();
      boolean linear = e.getValue() instanceof Linear || e.getValue() instanceof LoraLinear;
      if (linear) {
        linears.add(path);
      }
      if (linear && config.targets(path, path.equals(head))) {
        if (e.getValue() instanceof LoraLinear) {
          throw new IllegalArgumentException("module '" + path + "' already has a LoRA adapter");
        }
        if (!((Linear) e.getValue()).parameters().isEmpty()) {
          throw new IllegalArgumentException("module '" + path + "' is trainable (full fine-tuning); LoRA adapts "
              + "frozen linear modules");
        }
        targets.add(path);
      }
    }
    if (targets.isEmpty()) {
      throw new IllegalArgumentException("no linear module matches " + describe(config) + "; the model's linear "
          + "modules are " + (linears.size() <= 8 ? linears : linears.subList(0, 8) + " and " + (linears.size() - 8)
          + " more"));
    }
    Map<String, LoraLinear> adapted = new LinkedHashMap<>();
    try { // every layer made before the first replacement: a failure leaves the model as it was
      for (String path : targets) {
        Linear base = (Linear) model.module(path);
        adapted.put(path, LoraLinear.create(base.weight(), base.bias(), config.forModule(path), adapted.size()));
      }
    } catch (RuntimeException e) {
      adapted.values().forEach(LoraLinear::close);
      throw e;
    }
    Map<String, LoraAdapter> adapters = new LinkedHashMap<>();
    for (Map.Entry<String, LoraLinear> e : adapted.entrySet()) {
      String path = e.getKey();
      int dot = path.lastIndexOf('.');
      Module parent = dot < 0 ? model : model.module(path.substring(0, dot));
      parent.replaceChild(path.substring(dot + 1), e.getValue()).close(); // the layer copied W and b
      adapters.put(path, e.getValue().adapter());
    }
    return Collections.unmodifiableMap(adapters);
  }

  /** The adapters of {@code model}'s LoRA layers by module path, in model order (what {@link #inject} returned). */
  public static Map<String, LoraAdapter> adapters(Module model) {
    if (model == null) {
      throw new IllegalArgumentException("model: must not be null");
    }
    Map<String, LoraAdapter> out = new LinkedHashMap<>();
    model.modules().forEach((path, m) -> {
      if (m instanceof LoraLinear l) {
        out.put(path, l.adapter());
      }
    });
    return Collections.unmodifiableMap(out);
  }

  private static String describe(LoraConfig config) {
    String targets = config.targetModulesRegex() != null ? "targetModules regex '" + config.targetModulesRegex() + "'"
        : "targetModules " + config.targetModules();
    return targets + (config.layersToTransform().isEmpty() ? "" : " with layersToTransform "
        + config.layersToTransform() + (config.layersPattern().isEmpty() ? "" : " (layersPattern "
        + config.layersPattern() + ")"));
  }
}
