package dev.plora.bench;

import dev.plora.backend.Backend;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The LoRA layer's forward + backward against two baselines on the same data:
 *
 * <ul>
 *   <li>{@code lora_fwd_bwd}: {@link LoraLinear} with augmented activations;
 *   <li>{@code base_gemms}: {@code x·Wᵀ} and {@code dY·W} alone, the floor any LoRA layer pays;
 *   <li>{@code unfused_lora_fwd_bwd}: the same math as separate GEMMs and elementwise passes with
 *       materialised intermediates, the way PEFT on PyTorch runs it.
 * </ul>
 */
public final class LoraBench {
  /** A problem size, written as in the reports: "M=2048,K=1024,N=1024,r=16". */
  public record Shape(int m, int k, int n, int r) {
    @Override
    public String toString() {
      return "M=" + m + ",K=" + k + ",N=" + n + ",r=" + r;
    }
  }

  public static final List<Shape> DEFAULT_SHAPES = List.of(new Shape(2048, 1024, 1024, 16),
      new Shape(4096, 4096, 4096, 64));

  private final Backend backend;
  private final DType dtype;
  private final Timing timing;

  public LoraBench(Backend backend, DType dtype, Timing timing) {
    this.backend = backend;
    this.dtype = dtype;
    this.timing = timing;
  }

  /** Runs the three benchmarks at each shape; {@code progress} hears each result as it comes. */
  public List<BenchResult> run(List<Shape> shapes, Consumer<BenchResult> progress) {
    List<BenchResult> results = new ArrayList<>();
    for (Shape shape : shapes) {
      for (BenchResult r : runShape(shape)) {
        results.add(r);
        progress.accept(r);
      }
    }
    return results;
  }

  private List<BenchResult> runShape(Shape s) {
    List<BenchResult> out = new ArrayList<>();
    try (TensorScope scope = new TensorScope(backend)) {
      Tensor w = random(scope, s.n, s.k, 1);
      LoraConfig config = LoraConfig.builder().r(s.r).alpha(2f * s.r).build();
      try (LoraLinear layer = LoraLinear.create(w, null, config, 0)) {
        backend.fillUniform(layer.adapter().loraB(), -0.01f, 0.01f, 7, 2);
        Tensor xaug = scope.track(layer.allocateInput(s.m));
        backend.fillUniform(xaug.colsView(0, s.k), -1, 1, 7, 3);
        Tensor dyaug = scope.track(layer.allocateOutputGrad(s.m));
        backend.fillUniform(dyaug.colsView(0, s.n), -1, 1, 7, 4);
        Tensor y = scope.allocate(s.m, s.n, dtype);
        Tensor dx = scope.allocate(s.m, s.k, dtype);
        Tensor x = xaug.colsView(0, s.k);
        Tensor dy = dyaug.colsView(0, s.n);
        Runnable lora = () -> {
          layer.forward(xaug, y);
          layer.backward(dyaug, dx);
        };
        Runnable base = () -> {
          backend.gemm(false, x, true, w, 1f, 0f, y);
          backend.gemm(false, dy, false, w, 1f, 0f, dx);
        };
        Runnable unfused = unfused(scope, s, x, w, layer.adapter().loraA(), layer.adapter().loraB(), dy, y, dx, layer.scaling());
        double[][] ms = timing.measureInterleaved(backend, List.of(lora, base, unfused));
        long flops = 4L * s.m * s.n * s.k; // the two base GEMMs: the work every variant must do
        out.add(BenchResult.of("lora_fwd_bwd", s.toString(), ms[0], 0, flops));
        out.add(BenchResult.of("base_gemms", s.toString(), ms[1], 0, flops));
        out.add(BenchResult.of("unfused_lora_fwd_bwd", s.toString(), ms[2], 0, flops));
      }
    }
    return out;
  }

  /**
   * PEFT's op sequence: result = x·Wᵀ; t = x·Aᵀ; u = t·Bᵀ [M,N]; result += s·u. Backward by
   * autograd: g = s·dY [M,N]; dB += gᵀ·t; dT = g·B; dA += dTᵀ·x; dX = dY·W; dX += dT·A (via a
   * materialised [M,K] product).
   */
  private Runnable unfused(TensorScope scope, Shape s, Tensor x, Tensor w, Tensor a, Tensor b, Tensor dy, Tensor y,
      Tensor dx, float scaling) {
    Tensor t = scope.allocate(s.m, s.r, dtype);
    Tensor u = scope.allocate(s.m, s.n, dtype);
    Tensor g = scope.allocate(s.m, s.n, dtype);
    Tensor dt = scope.allocate(s.m, s.r, dtype);
    Tensor dxLora = scope.allocate(s.m, s.k, dtype);
    Tensor gradA = scope.allocate(s.r, s.k, DType.F32).fill(0f);
    Tensor gradB = scope.allocate(s.n, s.r, DType.F32).fill(0f);
    Tensor aCopy = scope.allocate(s.r, s.k, dtype);
    Tensor bCopy = scope.allocate(s.n, s.r, dtype);
    backend.copy(a, aCopy);
    backend.copy(b, bCopy);
    return () -> {
      backend.gemm(false, x, true, w, 1f, 0f, y);
      backend.gemm(false, x, true, aCopy, 1f, 0f, t);
      backend.gemm(false, t, true, bCopy, 1f, 0f, u);
      backend.axpby(scaling, u, 1f, y);
      backend.axpby(scaling, dy, 0f, g);
      backend.gemm(true, g, false, t, 1f, 1f, gradB);
      backend.gemm(false, g, false, bCopy, 1f, 0f, dt);
      backend.gemm(true, dt, false, x, 1f, 1f, gradA);
      backend.gemm(false, dy, false, w, 1f, 0f, dx);
      backend.gemm(false, dt, false, aCopy, 1f, 0f, dxLora);
      backend.axpby(1f, dxLora, 1f, dx);
    };
  }

  private Tensor random(TensorScope scope, int rows, int cols, long stream) {
    Tensor t = scope.allocate(rows, cols, dtype);
    backend.fillUniform(t, -0.05f, 0.05f, 11, stream);
    return t;
  }
}
