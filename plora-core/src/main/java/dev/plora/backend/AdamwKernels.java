package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/** Kernel family "adamw_kernels" ({@code native/include/plora/adamw_kernels.h}): the fused AdamW step. */
public final class AdamwKernels {
  /** Bytes per slot of the device copy of the slot table: nine 8-byte fields. */
  private static final long TABLE_BYTES_PER_SLOT = 9L * 8;

  private AdamwKernels() {}

  /**
   * One fused AdamW step over all slots (one native call). Parameters, gradients and moments
   * are contiguous fp32 of one shape per slot; the optional copies share one float dtype.
   */
  public static void step(Backend backend, List<AdamwSlot> slots, AdamwHyper hyper) {
    synchronized (backend) {
      Args.open(backend);
      if (slots == null || hyper == null) {
        throw new IllegalArgumentException("adamw: slots and hyper must not be null");
      }
      DType copyType = null;
      for (int i = 0; i < slots.size(); i++) {
        AdamwSlot s = slots.get(i);
        String at = "adamw slot " + i + " ";
        if (s == null) {
          throw new IllegalArgumentException(at + "is null");
        }
        for (Tensor t : new Tensor[] {s.param(), s.grad(), s.m(), s.v()}) {
          Args.tensor(backend, at + (t == s.param() ? "param" : t == s.grad() ? "grad" : t == s.m() ? "m" : "v"), t);
          if (t.dtype() != DType.F32 || !t.isContiguous()) {
            throw new IllegalArgumentException(at + "tensor " + t + ": expected contiguous F32");
          }
          Args.shape("adamw", at + "tensor", t, s.param().rows(), s.param().cols(), "param " + s.param().shape());
        }
        if (s.copy() != null) {
          Args.floats(backend, "adamw", at + "copy", s.copy());
          Args.shape("adamw", at + "copy", s.copy(), s.param().rows(), s.param().cols(),
              "param " + s.param().shape());
          if (copyType != null && s.copy().dtype() != copyType) {
            throw new IllegalArgumentException(at + "copy has dtype " + s.copy().dtype() + ", others " + copyType);
          }
          copyType = s.copy().dtype();
          Args.disjoint("adamw", at + "copy", s.copy(), "param", s.param());
        }
        if (!Float.isFinite(s.lrScale()) || s.lrScale() < 0) {
          throw new IllegalArgumentException(at + "lrScale: expected a finite value >= 0, got " + s.lrScale());
        }
      }
      for (float f : new float[] {hyper.lr(), hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay(),
          hyper.gradScale(), hyper.biasCorrection1(), hyper.biasCorrection2()}) {
        Args.finite("adamw hyper-parameter", f);
      }
      if (!(hyper.biasCorrection1() > 0 && hyper.biasCorrection2() > 0)) {
        throw new IllegalArgumentException("adamw: bias corrections must be > 0, got " + hyper.biasCorrection1()
            + ", " + hyper.biasCorrection2());
      }
      if (!slots.isEmpty()) {
        run(backend, slots, copyType == null ? DType.F32 : copyType, hyper);
      }
    }
  }

  private static void run(Backend backend, List<AdamwSlot> slots, DType copyType, AdamwHyper h) {
    int n = slots.size();
    long[] params = new long[n], grads = new long[n], m = new long[n], v = new long[n], copies = new long[n];
    long[] copyLd = new long[n], rows = new long[n], cols = new long[n];
    float[] lrScale = new float[n];
    for (int i = 0; i < n; i++) {
      AdamwSlot s = slots.get(i);
      params[i] = s.param().address();
      grads[i] = s.grad().address();
      m[i] = s.m().address();
      v[i] = s.v().address();
      copies[i] = s.copy() == null ? 0 : s.copy().address();
      copyLd[i] = s.copy() == null ? 0 : s.copy().ld();
      rows[i] = s.param().rows();
      cols[i] = s.param().cols();
      lrScale[i] = s.lrScale();
    }
    if (backend.onCuda()) {
      long tableBytes = TABLE_BYTES_PER_SLOT * n;
      long table = backend.workspace(tableBytes);
      backend.check(Cuda.plora_cuda_adamw(n, params, grads, m, v, copies, copyLd, rows, cols, lrScale,
          copyType.code(), h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), h.gradScale(),
          h.biasCorrection1(), h.biasCorrection2(), table, tableBytes, backend.stream()), "adamw");
    } else {
      backend.check(Cpu.plora_cpu_adamw(n, params, grads, m, v, copies, copyLd, rows, cols, lrScale,
          copyType.code(), h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), h.gradScale(),
          h.biasCorrection1(), h.biasCorrection2()), "adamw");
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/adamw_kernels.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_adamw(int count, @Cast("const int64_t*") long[] params,
        @Cast("const int64_t*") long[] grads, @Cast("const int64_t*") long[] m, @Cast("const int64_t*") long[] v,
        @Cast("const int64_t*") long[] copies, @Cast("const int64_t*") long[] copyLd,
        @Cast("const int64_t*") long[] rows, @Cast("const int64_t*") long[] cols,
        @Cast("const float*") float[] lrScale, int copyDtype, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, float biasCorrection1, float biasCorrection2);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/adamw_kernels.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_adamw(int count, @Cast("const int64_t*") long[] params,
        @Cast("const int64_t*") long[] grads, @Cast("const int64_t*") long[] m, @Cast("const int64_t*") long[] v,
        @Cast("const int64_t*") long[] copies, @Cast("const int64_t*") long[] copyLd,
        @Cast("const int64_t*") long[] rows, @Cast("const int64_t*") long[] cols,
        @Cast("const float*") float[] lrScale, int copyDtype, float lr, float beta1, float beta2, float eps,
        float weightDecay, float gradScale, float biasCorrection1, float biasCorrection2, @Cast("void*") long table,
        @Cast("int64_t") long tableBytes, @Cast("void*") long stream);
  }
}
