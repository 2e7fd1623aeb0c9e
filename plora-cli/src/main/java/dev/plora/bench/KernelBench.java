package dev.plora.bench;

import dev.plora.backend.AdamwHyper;
import dev.plora.backend.AdamwSlot;
import dev.plora.backend.Backend;
import dev.plora.backend.Dropout;
import dev.plora.backend.Rounding;
import dev.plora.backend.cpu.Bf16Gemm;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Benchmarks of the kernel families, each reported with the bytes and FLOPs it must move and do
 * at minimum (docs/design.md §4) and compared with a ceiling measured in the same run: a large
 * device copy for the bandwidth-bound kernels ({@code memcpy}), the BLAS GEMM rate for
 * GEMM-bound work ({@code gemm}).
 */
public final class KernelBench {
  public static final List<String> FAMILIES = List.of("gemm", "shrink", "dypass", "dadx", "merge", "adamw", "ops");
  private static final int R = 16; // the LoRA rank of the kernel benchmarks
  private static final int COPY_COLS = 4096;

  private final Backend backend;
  private final DType dtype;
  private final Timing timing;
  private final boolean big; // GPU-sized problems
  private double memcpyGbps;
  private double gemmGflops;
  private Tensor copySrc; // the ceiling's copy, timed beside each kernel during run()
  private Tensor copyDst;

  public KernelBench(Backend backend, DType dtype, Timing timing) {
    this.backend = backend;
    this.dtype = dtype;
    this.timing = timing;
    this.big = backend.device() == Device.CUDA;
  }

  /** The copy bandwidth ceiling (GB/s, read + write, fastest run), measured by {@link #ceilings}. */
  public double memcpyGbps() {
    return memcpyGbps;
  }

  public double gemmGflops() {
    return gemmGflops;
  }

  /**
   * Measures the two ceilings and returns them as results named "memcpy" and "gemm". A ceiling is
   * the rate of its fastest run, not its median, over at least 30 copies and 10 GEMMs: on a shared
   * or busy machine (JIT threads at start, neighbours) the rate swings by 2x, and a sunken ceiling
   * flatters whatever is compared with it.
   */
  public List<BenchResult> ceilings() {
    List<BenchResult> out = new ArrayList<>();
    try (TensorScope s = new TensorScope(backend)) {
      Tensor src = random(s, copyRows(), COPY_COLS, DType.F32), dst = s.allocate(copyRows(), COPY_COLS, DType.F32);
      BenchResult copy = BenchResult.of("memcpy", "[" + copyRows() + "," + COPY_COLS + "] F32",
          timing.withAtLeast(30).measure(backend, () -> backend.copy(src, dst)), copyBytes(), 0);
      memcpyGbps = copy.peakGbps();
      out.add(copy);
      int m = big ? 8192 : 2048, k = big ? 4096 : 2048, n = big ? 4096 : 2048;
      Tensor a = random(s, m, k, dtype), b = random(s, n, k, dtype), c = s.allocate(m, n, dtype);
      BenchResult gemm = BenchResult.of("gemm", "M=" + m + ",K=" + k + ",N=" + n + " " + dtype,
          timing.withAtLeast(10).measure(backend, () -> backend.gemm(false, a, true, b, 1f, 0f, c)), 0, 2L * m * n * k);
      gemmGflops = gemm.peakGflops();
      out.add(gemm);
    }
    return out;
  }

  /**
   * Runs the given families. Each kernel is timed in rounds interleaved with the ceiling's copy
   * and compared with the copy rate of those same rounds: the machine's drifts (this VM's copy
   * rate swings 2x over minutes) then hit both alike.
   */
  public List<BenchResult> run(List<String> families, Consumer<BenchResult> progress) {
    List<BenchResult> out = new ArrayList<>();
    try (TensorScope copies = new TensorScope(backend)) {
      copySrc = random(copies, copyRows(), COPY_COLS, DType.F32);
      copyDst = copies.allocate(copyRows(), COPY_COLS, DType.F32);
      for (String family : families) {
        try (TensorScope s = new TensorScope(backend)) {
          List<BenchResult> results = switch (family) {
            case "gemm" -> gemms(s);
            case "shrink" -> shrink(s);
            case "dypass" -> dyPass(s);
            case "dadx" -> daDx(s);
            case "merge" -> merge(s);
            case "adamw" -> adamw(s);
            case "ops" -> ops(s);
            default -> throw new IllegalArgumentException("bench: unknown family '" + family + "'");
          };
          results.forEach(progress);
          out.addAll(results);
        }
      }
    } finally {
      copySrc = null;
      copyDst = null;
    }
    return out;
  }

  /** {@code step} timed in rounds interleaved with the ceiling's copy, and compared with that copy. */
  private BenchResult kernel(String name, String shape, Runnable step, long bytes, long flops) {
    double[][] ms = timing.measureInterleaved(backend, List.of(step, () -> backend.copy(copySrc, copyDst)));
    double copyGbps = copyBytes() / (Timing.median(ms[1]) * 1e6);
    return BenchResult.of(name, shape, ms[0], bytes, flops).against("memcpy", copyGbps);
  }

  private int copyRows() {
    return big ? 16384 : 4096;
  }

  private long copyBytes() { // read + written
    return 2L * copyRows() * COPY_COLS * 4;
  }

  private int m() {
    return big ? 8192 : 2048;
  }

  private int k() {
    return big ? 4096 : 1024;
  }

  private String lora(int m, int k) {
    return "M=" + m + ",K=" + k + ",r=" + R + " " + dtype;
  }

  /**
   * The GEMMs of a Llama step at 512 tokens (hidden 1024, intermediate 2816: the projections'
   * forward x·Wᵀ, the dX GEMM dY·W and the dW GEMM dYᵀ·X) and a square 4096³ one, in F32 and BF16
   * timed in the same rounds; BF16 is compared with the F32 rate of those rounds. On a host
   * backend whose BF16 GEMMs take oneDNN, the widened-copies fallback runs in the same rounds
   * too, on a second backend.
   */
  private List<BenchResult> gemms(TensorScope s) {
    int[][] shapes = { // m, k, n, transA, transB
      {512, 1024, 2816, 0, 1}, {512, 2816, 1024, 0, 1}, {512, 1024, 2816, 0, 0}, {2816, 512, 1024, 1, 0},
      {4096, 4096, 4096, 0, 1}};
    List<BenchResult> out = new ArrayList<>();
    CpuBackend widened = backend instanceof CpuBackend cpu && cpu.bf16Gemm() == Bf16Gemm.ONEDNN
        ? new CpuBackend(Bf16Gemm.OPENBLAS) : null;
    try (widened; TensorScope w = widened == null ? null : new TensorScope(widened)) {
      for (int[] g : shapes) {
        int m = g[0], k = g[1], n = g[2];
        boolean ta = g[3] == 1, tb = g[4] == 1;
        String shape = "M=" + m + ",K=" + k + ",N=" + n + " " + (ta ? "T" : "N") + (tb ? "T" : "N");
        List<Runnable> steps = new ArrayList<>();
        for (DType type : new DType[] {DType.F32, DType.BF16}) {
          steps.add(gemmStep(backend, s, m, k, n, ta, tb, type));
        }
        if (widened != null) {
          steps.add(gemmStep(widened, w, m, k, n, ta, tb, DType.BF16));
        }
        double[][] ms = timing.measureInterleaved(backend, steps);
        long flops = 2L * m * n * k;
        BenchResult f32 = BenchResult.of("gemm_f32", shape, ms[0], 0, flops);
        out.add(f32);
        out.add(BenchResult.of("gemm_bf16", shape, ms[1], 0, flops).against("gemm_f32", f32.achievedGflops()));
        if (widened != null) {
          out.add(BenchResult.of("gemm_bf16_widened", shape, ms[2], 0, flops).against("gemm_f32",
              f32.achievedGflops()));
        }
      }
    }
    return out;
  }

  /** c ← op(a)·op(b) on {@code on}, with random operands of {@code type} allocated in {@code scope}. */
  private static Runnable gemmStep(Backend on, TensorScope scope, int m, int k, int n, boolean ta, boolean tb,
      DType type) {
    Tensor a = random(on, scope, ta ? k : m, ta ? m : k, type), b = random(on, scope, tb ? n : k, tb ? k : n, type);
    Tensor c = scope.allocate(m, n, type);
    return () -> on.gemm(ta, a, tb, b, 1f, 0f, c);
  }

  private List<BenchResult> shrink(TensorScope s) {
    int m = m(), k = k();
    Tensor x = random(s, m, k, dtype), a = random(s, R, k, dtype), out = s.allocate(m, R, dtype);
    long bytes = ((long) m * k + (long) R * k + (long) m * R) * dtype.byteSize();
    return List.of(
        kernel("shrink", lora(m, k), () -> backend.shrink(x, a, 1f, Dropout.NONE, out), bytes, 2L * m * k * R),
        kernel("shrink_dropout", lora(m, k) + " p=0.1",
            () -> backend.shrink(x, a, 1f, new Dropout(0.1f, 1, 2), out), bytes, 2L * m * k * R));
  }

  private List<BenchResult> dyPass(TensorScope s) {
    int m = m(), n = k();
    Tensor dy = random(s, m, n, dtype), b = random(s, n, R, dtype), ss = random(s, m, R, dtype);
    Tensor ds = s.allocate(m, R, dtype), db = s.allocate(n, R, DType.F32).fill(0f);
    long bytes = ((long) m * n + 2L * m * R + (long) n * R) * dtype.byteSize() + 2L * n * R * 4;
    return List.of(kernel("dypass", "M=" + m + ",N=" + n + ",r=" + R + " " + dtype,
        () -> backend.dyPass(dy, b, ss, 1f, ds, db), bytes, 4L * m * n * R));
  }

  private List<BenchResult> daDx(TensorScope s) {
    int m = m(), k = k();
    Tensor x = random(s, m, k, dtype), ds = random(s, m, R, dtype), a = random(s, R, k, dtype);
    Tensor da = s.allocate(R, k, DType.F32).fill(0f), dx = random(s, m, k, dtype);
    long xBytes = (long) m * k * dtype.byteSize();
    long small = ((long) m * R + (long) R * k) * dtype.byteSize() + 2L * R * k * 4;
    return List.of(
        kernel("dadx", lora(m, k), () -> backend.daDx(x, ds, a, Dropout.NONE, da, null),
            xBytes + small, 2L * m * k * R),
        kernel("dadx_dx_dropout", lora(m, k) + " p=0.1",
            () -> backend.daDx(x, ds, a, new Dropout(0.1f, 1, 2), da, dx), 3 * xBytes + small, 4L * m * k * R));
  }

  private List<BenchResult> merge(TensorScope s) {
    int n = 4096, k = 4096;
    Tensor a = random(s, R, k, DType.F32), b = random(s, n, R, DType.F32);
    List<BenchResult> out = new ArrayList<>();
    for (DType wType : new DType[] {DType.F32, DType.BF16}) {
      Tensor w = random(s, n, k, wType);
      Rounding rounding = wType == DType.BF16 ? Rounding.STOCHASTIC : Rounding.NEAREST;
      out.add(kernel("merge", "N=" + n + ",K=" + k + ",r=" + R + " W " + wType + " " + rounding,
          () -> backend.merge(w, b, a, 1e-3f, rounding, 1, 2, 1f, 1f),
          2L * n * k * wType.byteSize() + ((long) n * R + (long) R * k) * 4, 2L * n * k * R));
    }
    return out;
  }

  /** Eight tensors of 2M fp32 values in one call: p, g, m, v read, p, m, v written, plus a bf16 copy. */
  private List<BenchResult> adamw(TensorScope s) {
    int slots = 8, rows = big ? 4096 : 2048, cols = 1024;
    List<AdamwSlot> list = new ArrayList<>();
    for (int i = 0; i < slots; i++) {
      list.add(new AdamwSlot(random(s, rows, cols, DType.F32), random(s, rows, cols, DType.F32),
          s.allocate(rows, cols, DType.F32).fill(0f), s.allocate(rows, cols, DType.F32).fill(0f),
          s.allocate(rows, cols, DType.BF16), 1f));
    }
    long elements = (long) slots * rows * cols;
    AdamwHyper h = new AdamwHyper(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 1f, 0.1f, 0.001f);
    return List.of(kernel("adamw", slots + " x [" + rows + "," + cols + "] F32 + BF16 copies",
        () -> backend.adamw(list, h), elements * (7 * 4 + 2), elements * 12));
  }

  private List<BenchResult> ops(TensorScope s) {
    int m = big ? 16384 : 4096, n = 4096;
    Tensor x = random(s, m, n, dtype), y = s.allocate(m, n, dtype), dy = random(s, m, n, dtype);
    Tensor dx = s.allocate(m, n, dtype);
    long e = (long) m * n, size = dtype.byteSize();
    String shape = "[" + m + "," + n + "] " + dtype;
    int classes = 1024;
    Tensor logits = random(s, m, classes, dtype), dlogits = s.allocate(m, classes, dtype);
    Tensor labels = s.allocate(m, 1, DType.F32).fill(3f);
    return List.of(
        kernel("gelu", shape, () -> backend.gelu(x, y), 2 * e * size, 20 * e),
        kernel("gelu_backward", shape, () -> backend.geluBackward(x, dy, dx), 3 * e * size, 30 * e),
        kernel("mse", shape, () -> backend.mse(x, dy, dx), 3 * e * size, 4 * e),
        kernel("sum_squares", shape, () -> backend.sumSquares(x), e * size, 2 * e),
        kernel("softmax_xent", "[" + m + "," + classes + "] " + dtype,
            () -> backend.softmaxCrossEntropy(logits, labels, dlogits), 2L * m * classes * size, 10L * m * classes));
  }

  private Tensor random(TensorScope s, int rows, int cols, DType type) {
    return random(backend, s, rows, cols, type);
  }

  private static Tensor random(Backend on, TensorScope s, int rows, int cols, DType type) {
    Tensor t = s.allocate(rows, cols, type);
    on.fillUniform(t, -1f, 1f, 5, rows * 31L + cols);
    return t;
  }
}
