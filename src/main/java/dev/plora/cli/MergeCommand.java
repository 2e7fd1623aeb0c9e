package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.backend.Rounding;
import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code plora merge}: base weights + a PEFT LoRA adapter → merged weights, tensor by tensor (peak
 * memory is one tensor, not the model), with the native merge kernel, written atomically.
 */
@Command(name = "merge", description = "Merge a PEFT LoRA adapter into base safetensors weights, tensor by tensor.")
final class MergeCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--base", required = true, paramLabel = "BASE.safetensors", description = "Base weights.")
  Path base;

  @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "PEFT adapter folder.")
  Path adapter;

  @Option(names = "--out", required = true, paramLabel = "OUT.safetensors", description = "Merged weights to write.")
  Path out;

  @Option(names = "--dtype", description = "f32, bf16 or f16 for the floating-point tensors (default: as in BASE).")
  String dtype;

  @Option(names = "--rounding", description = "nearest or stochastic (bf16 only) for merged weights "
      + "(default nearest).", defaultValue = "nearest")
  String rounding;

  @Option(names = "--force", description = "Replace OUT if it exists.")
  boolean force;

  @Option(names = "--backend", description = "cpu or cuda (default: as plora info says).")
  String backendName;

  @Option(names = "--seed", description = "Seed of stochastic rounding (default 0).", defaultValue = "0")
  long seed;

  @Override
  public Integer call() throws Exception {
    Rounding mode = switch (rounding.toLowerCase(Locale.ROOT)) {
      case "nearest" -> Rounding.NEAREST;
      case "stochastic" -> Rounding.STOCHASTIC;
      default -> throw new IllegalArgumentException("--rounding: expected nearest or stochastic, got '" + rounding + "'");
    };
    DType forced = dtype == null ? null : Options.dtype("--dtype", dtype, true);
    Options.inputFile("--base", base);
    Options.adapterFolder("--adapter", adapter);
    Options.outputFile("--out", out, force);
    PrintWriter err = spec.commandLine().getErr();
    PeftAdapter peft = PeftAdapter.read(adapter);
    float scaling = (float) peft.config().scaling();
    try (Safetensors.Reader in = Safetensors.open(base);
        Backend backend = Options.backend(backendName)) {
      List<Safetensors.Spec> specs = new ArrayList<>();
      Set<String> merged = new HashSet<>();
      for (Safetensors.Entry e : in.entries()) {
        specs.add(new Safetensors.Spec(e.name(), outType(e, forced), e.shape()));
        String module = e.name().endsWith(".weight") ? e.name().substring(0, e.name().length() - 7) : null;
        if (module != null && peft.modules().containsKey(module)) {
          PeftAdapter.Module m = peft.modules().get(module);
          if (e.shape().length != 2 || e.shape()[0] != m.out() || e.shape()[1] != m.in()) {
            throw new IllegalArgumentException("module '" + module + "': base weight " + java.util.Arrays.toString(e.shape())
                + " does not match the adapter's [out, in] = [" + m.out() + ", " + m.in() + "]");
          }
          if (!e.dtype().isFloat()) {
            throw new IllegalArgumentException("module '" + module + "': base weight is " + e.dtype());
          }
          if (mode == Rounding.STOCHASTIC && outType(e, forced) != Safetensors.Dtype.BF16) {
            throw new IllegalArgumentException("--rounding stochastic needs bf16 output, '" + e.name() + "' would be "
                + outType(e, forced));
          }
          merged.add(module);
        }
      }
      for (String module : peft.modules().keySet()) {
        if (!merged.contains(module)) {
          throw new IllegalArgumentException("adapter module '" + module + "' has no weight '" + module
              + ".weight' in " + base);
        }
      }
      Map<String, String> metadata = new java.util.LinkedHashMap<>(in.metadata());
      metadata.put("plora_merged_adapter", adapter.toString());
      int done = 0;
      try (Safetensors.Writer w = Safetensors.create(out, specs, metadata, force)) {
        for (Safetensors.Entry e : in.entries()) {
          Safetensors.Dtype type = outType(e, forced);
          String module = e.name().endsWith(".weight") ? e.name().substring(0, e.name().length() - 7) : null;
          if (module != null && merged.contains(module)) {
            w.write(mergeOne(backend, in, e, peft.modules().get(module), scaling, type, mode, done));
          } else if (type == e.dtype()) {
            w.write(in.data(e.name()));
          } else {
            w.write(in.floats(e.name()));
          }
          done++;
          progress(err, done, specs.size(), e.name());
        }
        w.commit();
      } catch (java.io.IOException e) {
        throw Options.cannotWrite(out, e);
      }
      spec.commandLine().getOut().printf(Locale.ROOT, "merged %d modules (scaling %.6g) into %s%n", merged.size(),
          scaling, out);
    }
    return 0;
  }

  /** W + s·B·A for one module, on the backend, in the output dtype; refuses non-finite results. */
  private float[] mergeOne(Backend backend, Safetensors.Reader in, Safetensors.Entry e, PeftAdapter.Module m,
      float scaling, Safetensors.Dtype type, Rounding mode, int index) throws java.io.IOException {
    DType storage = switch (type) {
      case BF16 -> DType.BF16;
      case F16 -> DType.F16;
      default -> DType.F32;
    };
    try (TensorScope s = new TensorScope(backend)) {
      Tensor w = s.fromArray(in.floats(e.name()), m.out(), m.in(), storage);
      Tensor a = s.fromArray(m.a(), m.r(), m.in(), DType.F32);
      Tensor b = s.fromArray(m.b(), m.out(), m.r(), DType.F32);
      backend.merge(w, b, a, scaling, mode, seed, index, 1f, 1f);
      long bad = backend.countNonFinite(w);
      if (bad > 0) {
        throw new IllegalArgumentException("merge refused: '" + e.name() + "' would hold " + bad
            + " non-finite values; nothing was written");
      }
      return w.toFloatArray();
    }
  }

  private static Safetensors.Dtype outType(Safetensors.Entry e, DType forced) {
    if (forced == null || !e.dtype().isFloat()) {
      return e.dtype();
    }
    return Safetensors.Dtype.of(forced);
  }

  private static void progress(PrintWriter err, int done, int total, String name) {
    if (System.console() == null) {
      return;
    }
    int filled = (int) Math.round(30.0 * done / total);
    err.printf(Locale.ROOT, "\rmerge [%s%s] %d/%d %-50.50s", "=".repeat(filled), " ".repeat(30 - filled), done, total, name);
    if (done == total) {
      err.println();
    }
    err.flush();
  }
}
