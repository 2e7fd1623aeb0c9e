package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.bench.BenchReport;
import dev.plora.bench.BenchResult;
import dev.plora.bench.KernelBench;
import dev.plora.bench.LmBench;
import dev.plora.bench.LoraBench;
import dev.plora.bench.SvdBench;
import dev.plora.bench.Timing;
import dev.plora.tensor.DType;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code plora bench [FAMILY...]}: kernel, layer and SVD benchmarks. */
@Command(name = "bench", description = "Benchmark the kernel families, the LoRA layer, the truncated SVD and a "
    + "step of a Llama-shaped model (lm): "
    + "medians after warm-up, bytes and FLOPs moved, and the ratio to a memcpy or GEMM ceiling measured in the same "
    + "run.")
final class BenchCommand implements Callable<Integer> {
  private static final List<String> FAMILIES = java.util.stream.Stream.concat(KernelBench.FAMILIES.stream(),
      java.util.stream.Stream.of("lora", SvdBench.FAMILY, LmBench.FAMILY)).toList();

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Parameters(paramLabel = "FAMILY", arity = "0..*", description = "What to benchmark: ${COMPLETION-CANDIDATES} "
      + "(default: all).", completionCandidates = Families.class)
  List<String> families = new ArrayList<>();

  @Option(names = "--backend", description = "cpu or cuda (default: as plora info says).")
  String backend;

  @Option(names = "--dtype", description = "f32 or bf16 (default f32).", defaultValue = "f32")
  String dtype;

  @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON (atomically).")
  Path json;

  @Option(names = "--shape", paramLabel = "M,K,N,r", description = "Problem size instead of the default ones; repeatable.")
  List<String> shapes = new ArrayList<>();

  @Option(names = "--runs", description = "Timed runs per benchmark (default ${DEFAULT-VALUE}).", defaultValue = "7")
  int runs;

  @Option(names = "--warmup", description = "Untimed runs first (default ${DEFAULT-VALUE}).", defaultValue = "2")
  int warmup;

  @Option(names = "--budget", paramLabel = "SECONDS", description = "Stop timing a benchmark after this long, "
      + "once it has 3 runs (default ${DEFAULT-VALUE}).", defaultValue = "20")
  double budget;

  static final class Families extends ArrayList<String> {
    Families() {
      super(FAMILIES);
    }
  }

  @Override
  public Integer call() throws Exception {
    Set<String> chosen = new LinkedHashSet<>(families.isEmpty() ? FAMILIES : families);
    for (String f : chosen) {
      if (!FAMILIES.contains(f)) {
        throw new IllegalArgumentException("bench: unknown family '" + f + "'; expected one of " + FAMILIES);
      }
    }
    DType type = Options.dtype("--dtype", dtype, false);
    List<LoraBench.Shape> sizes = shapes.isEmpty() ? LoraBench.DEFAULT_SHAPES : shapes.stream().map(BenchCommand::shape).toList();
    Timing timing = new Timing(warmup, runs, budget);
    if (json != null) {
      Options.outputFile("--json", json, true);
    }
    PrintWriter out = spec.commandLine().getOut();
    try (Backend b = Options.backend(backend)) {
      if (chosen.contains("lora")) {
        sizes.forEach(size -> requireMemory(b, type, size));
      }
      int threads = b instanceof CpuBackend ? CpuBackend.blasThreads() : 1;
      out.printf(Locale.ROOT, "plora bench on %s (%s), %s%n", b.name(), b.describe(), type);
      out.printf(Locale.ROOT, "%-22s %-44s %10s %10s %9s %9s %7s %6s%n", "name", "shape", "median_ms", "min_ms",
          "GB/s", "GFLOP/s", "ceiling", "ratio");
      out.flush();
      java.util.function.Consumer<BenchResult> print = r -> {
        out.printf(Locale.ROOT, "%-22s %-44s %10.3f %10.3f %9s %9s %7s %6s%n", r.name(), r.shape(), r.medianMs(),
            r.minMs(), r.bytes() > 0 ? String.format(Locale.ROOT, "%.1f", r.achievedGbps()) : "-",
            r.flops() > 0 ? String.format(Locale.ROOT, "%.1f", r.achievedGflops()) : "-",
            r.ceiling() == null ? "-" : r.ceiling(),
            r.ceiling() == null ? "-" : String.format(Locale.ROOT, "%.2f", r.ratioToCeiling()));
        out.flush();
      };
      KernelBench kernels = new KernelBench(b, type, timing);
      List<BenchResult> results = new ArrayList<>(kernels.ceilings());
      results.forEach(print);
      out.printf(Locale.ROOT, "ceilings (fastest runs): memcpy %.1f GB/s, gemm %.1f GFLOP/s%n", kernels.memcpyGbps(),
          kernels.gemmGflops());
      List<String> kernelFamilies = chosen.stream().filter(KernelBench.FAMILIES::contains).toList();
      results.addAll(kernels.run(kernelFamilies, print));
      if (chosen.contains("lora")) {
        for (BenchResult r : new LoraBench(b, type, timing).run(sizes, r -> {})) {
          BenchResult compared = r.against("gemm", kernels.gemmGflops());
          results.add(compared);
          print.accept(compared);
        }
      }
      if (chosen.contains(SvdBench.FAMILY)) {
        for (BenchResult r : new SvdBench(b, timing).run()) {
          results.add(r);
          print.accept(r);
        }
      }
      if (chosen.contains(LmBench.FAMILY)) {
        for (BenchResult r : new LmBench(b, type, timing).run(LmBench.DEFAULT, LmBench.DEFAULT_SEQUENCE, out::println)) {
          BenchResult compared = r.against("gemm", kernels.gemmGflops());
          results.add(compared);
          print.accept(compared);
        }
      }
      printRatios(out, results);
      if (json != null) {
        try {
          new BenchReport(b.name(), threads, results).writeJson(json);
        } catch (java.io.IOException e) {
          throw Options.cannotWrite(json, e);
        }
        out.println("wrote " + json);
      }
    }
    return 0;
  }

  /** Each result's time over that of the baseline measured in its rounds at its size. */
  private static void printRatios(PrintWriter out, List<BenchResult> results) {
    for (BenchResult base : results) {
      if (!base.name().equals("base_gemms") && !base.name().equals("dgemm") && !base.name().equals("lm_frozen_step")) {
        continue;
      }
      for (BenchResult r : results) {
        if (r.shape().equals(base.shape()) && !r.name().equals(base.name())) {
          out.printf(Locale.ROOT, "%s / %s at %s: %.3f%n", r.name(), base.name(), base.shape(),
              r.medianMs() / base.medianMs());
        }
      }
    }
  }

  /** M,K,N,r as four positive integers whose augmented widths K + r and N + r still fit an int. */
  private static LoraBench.Shape shape(String text) {
    String[] parts = text.split(",", -1);
    if (parts.length != 4) {
      throw new IllegalArgumentException("--shape: expected M,K,N,r, got '" + text + "'");
    }
    int[] v = new int[4];
    for (int i = 0; i < 4; i++) {
      try {
        v[i] = Integer.parseInt(parts[i].trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--shape: '" + parts[i] + "' in '" + text + "' is not an integer below 2^31");
      }
      if (v[i] <= 0) {
        throw new IllegalArgumentException("--shape: sizes must be positive, got '" + text + "'");
      }
    }
    if ((long) v[1] + v[3] > Integer.MAX_VALUE || (long) v[2] + v[3] > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("--shape: K + r and N + r must be below 2^31, got '" + text + "'");
    }
    return new LoraBench.Shape(v[0], v[1], v[2], v[3]);
  }

  /**
   * On the CPU, refuses a shape whose operands alone (W, x, dX, y, dY) outgrow the machine's
   * memory: the allocation would fail only after the ceilings had run. CUDA reports its own
   * allocation failures.
   */
  private static void requireMemory(Backend b, DType type, LoraBench.Shape s) {
    if (!(b instanceof CpuBackend)) {
      return;
    }
    double bytes = (double) type.byteSize() * ((double) s.n() * s.k() + 2.0 * s.m() * s.k() + 2.0 * s.m() * s.n());
    long memory = ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
        .getOperatingSystemMXBean()).getTotalMemorySize();
    if (bytes > memory) {
      throw new IllegalArgumentException(String.format(Locale.ROOT, "--shape %s: needs at least %.3g GB, more than "
          + "the %.3g GB of memory here", s, bytes / 1e9, memory / 1e9));
    }
  }
}
