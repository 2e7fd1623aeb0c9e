package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "lora" ({@code native/include/plora/lora.h}): the LoRA path's own kernels —
 * shrink and its dropout mask (forward), the dY pass and the dA/dX update (backward). Dropout is
 * drawn from Philox by element position, so forward and backward see the same mask.
 */
public final class LoraKernels {
  private LoraKernels() {}

  /**
   * LoRA shrink: {@code out ← scaling · x̃ · aᵀ} where x̃ is {@code x} with dropout applied, for
   * x [M,K], a [r,K], out [M,r], all of one dtype, fp32 accumulation. {@code out} may be the
   * spare columns of the buffer {@code x} lives in (augmented layout), but not overlap x.
   */
  public static void shrink(Backend backend, Tensor x, Tensor a, float scaling, Dropout dropout, Tensor out) {
    synchronized (backend) {
      Args.floats(backend, "shrink", "x", x);
      Args.tensor(backend, "a", a);
      Args.tensor(backend, "out", out);
      Args.notNull("dropout", dropout, " (use Dropout.NONE)");
      if (a.cols() != x.cols()) {
        throw new IllegalArgumentException("shrink: a has shape " + a.shape() + " but x has shape " + x.shape()
            + ": expected a [r," + x.cols() + "]");
      }
      Args.shape("shrink", "out", out, x.rows(), a.rows(), "x " + x.shape() + " and a " + a.shape());
      Args.dtype("shrink", "a", a, x.dtype());
      Args.dtype("shrink", "out", out, x.dtype());
      Args.disjoint("shrink", "out", out, "x", x);
      Args.disjoint("shrink", "out", out, "a", a);
      Args.finite("scaling", scaling);
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_shrink(x.address(), x.ld(), a.address(), a.ld(), out.address(), out.ld(),
            x.dtype().code(), x.rows(), x.cols(), a.rows(), scaling, dropout.p(), dropout.seed(), dropout.stream(),
            backend.stream()), "shrink");
      } else {
        backend.check(Cpu.plora_cpu_shrink(x.address(), x.ld(), a.address(), a.ld(), out.address(), out.ld(),
            x.dtype().code(), x.rows(), x.cols(), a.rows(), scaling, dropout.p(), dropout.seed(), dropout.stream()),
            "shrink");
      }
    }
  }

  /**
   * Writes the dropout multipliers that {@link #shrink} applies to an activation of {@code out}'s
   * shape: 1/(1-p) where an element is kept, 0 where it is dropped.
   */
  public static void dropoutMask(Backend backend, Dropout dropout, Tensor out) {
    synchronized (backend) {
      Args.floats(backend, "dropoutMask", "out", out);
      Args.notNull("dropout", dropout, "");
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_dropout_mask(out.address(), out.dtype().code(), out.ld(), out.rows(),
            out.cols(), dropout.p(), dropout.seed(), dropout.stream(), backend.stream()), "dropout mask");
      } else {
        backend.check(Cpu.plora_cpu_dropout_mask(out.address(), out.dtype().code(), out.ld(), out.rows(),
            out.cols(), dropout.p(), dropout.seed(), dropout.stream()), "dropout mask");
      }
    }
  }

  /**
   * LoRA dY pass, one pass over {@code dy}: {@code ds ← scaling·dy·b} and {@code db += dyᵀ·ss},
   * for dy [M,N], b [N,r], ss [M,r] (= scaling·S saved by the forward pass), ds [M,r] of dy's
   * dtype, and the fp32 gradient db [N,r].
   */
  public static void dyPass(Backend backend, Tensor dy, Tensor b, Tensor ss, float scaling, Tensor ds, Tensor db) {
    synchronized (backend) {
      Args.floats(backend, "dyPass", "dy", dy);
      Args.tensor(backend, "b", b);
      Args.tensor(backend, "ss", ss);
      Args.tensor(backend, "ds", ds);
      Args.tensor(backend, "db", db);
      int r = b.cols();
      Args.shape("dyPass", "b", b, dy.cols(), r, "dy " + dy.shape() + " (b is [N,r])");
      Args.shape("dyPass", "ss", ss, dy.rows(), r, "dy " + dy.shape() + " and b " + b.shape());
      Args.shape("dyPass", "ds", ds, dy.rows(), r, "dy " + dy.shape() + " and b " + b.shape());
      Args.shape("dyPass", "db", db, dy.cols(), r, "b " + b.shape());
      Args.dtype("dyPass", "b", b, dy.dtype());
      Args.dtype("dyPass", "ss", ss, dy.dtype());
      Args.dtype("dyPass", "ds", ds, dy.dtype());
      Args.dtype("dyPass", "db", db, DType.F32);
      Args.disjoint("dyPass", "ds", ds, new String[] {"dy", "b", "ss", "db"}, dy, b, ss, db);
      Args.disjoint("dyPass", "db", db, new String[] {"dy", "b", "ss"}, dy, b, ss);
      Args.finite("scaling", scaling);
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_dy_pass(dy.address(), dy.ld(), b.address(), b.ld(), ss.address(), ss.ld(),
            ds.address(), ds.ld(), db.address(), db.ld(), dy.dtype().code(), dy.rows(), dy.cols(), b.cols(), scaling,
            backend.stream()), "dY pass");
      } else {
        backend.check(Cpu.plora_cpu_dy_pass(dy.address(), dy.ld(), b.address(), b.ld(), ss.address(), ss.ld(),
            ds.address(), ds.ld(), db.address(), db.ld(), dy.dtype().code(), dy.rows(), dy.cols(), b.cols(), scaling),
            "dY pass");
      }
    }
  }

  /**
   * LoRA dA / dX update, one pass over {@code x}: {@code da += dsᵀ·x̃} and, when {@code dx} is
   * not null, {@code dx += mask⊙(ds·a)/(1−p)}, with x̃ and the mask of {@code dropout} exactly
   * as in {@link #shrink}. x [M,K], ds [M,r], a [r,K], dx [M,K] share a dtype; da [r,K] is fp32.
   */
  public static void daDx(Backend backend, Tensor x, Tensor ds, Tensor a, Dropout dropout, Tensor da, Tensor dx) {
    synchronized (backend) {
      Args.floats(backend, "daDx", "x", x);
      Args.tensor(backend, "ds", ds);
      Args.tensor(backend, "a", a);
      Args.tensor(backend, "da", da);
      Args.notNull("dropout", dropout, " (use Dropout.NONE)");
      int r = a.rows();
      Args.shape("daDx", "a", a, r, x.cols(), "x " + x.shape() + " (a is [r,K])");
      Args.shape("daDx", "ds", ds, x.rows(), r, "x " + x.shape() + " and a " + a.shape());
      Args.shape("daDx", "da", da, r, x.cols(), "a " + a.shape());
      Args.dtype("daDx", "ds", ds, x.dtype());
      Args.dtype("daDx", "a", a, x.dtype());
      Args.dtype("daDx", "da", da, DType.F32);
      Args.disjoint("daDx", "da", da, new String[] {"x", "ds", "a"}, x, ds, a);
      if (dx != null) {
        Args.tensor(backend, "dx", dx);
        Args.shape("daDx", "dx", dx, x.rows(), x.cols(), "x " + x.shape());
        Args.dtype("daDx", "dx", dx, x.dtype());
        Args.disjoint("daDx", "dx", dx, new String[] {"x", "ds", "a", "da"}, x, ds, a, da);
      }
      long dxAddress = dx != null ? dx.address() : 0L;
      long dxLd = dx != null ? dx.ld() : 0L;
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_da_dx(x.address(), x.ld(), ds.address(), ds.ld(), a.address(), a.ld(),
            da.address(), da.ld(), dxAddress, dxLd, x.dtype().code(), x.rows(), x.cols(), a.rows(), dropout.p(),
            dropout.seed(), dropout.stream(), backend.stream()), "dA/dX update");
      } else {
        backend.check(Cpu.plora_cpu_da_dx(x.address(), x.ld(), ds.address(), ds.ld(), a.address(), a.ld(),
            da.address(), da.ld(), dxAddress, dxLd, x.dtype().code(), x.rows(), x.cols(), a.rows(), dropout.p(),
            dropout.seed(), dropout.stream()), "dA/dX update");
      }
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/lora.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_dropout_mask(@Cast("void*") long out, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, float p, @Cast("uint64_t") long seed,
        @Cast("uint64_t") long stream);

    static native int plora_cpu_shrink(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long a, @Cast("int64_t") long ldA, @Cast("void*") long out,
        @Cast("int64_t") long ldOut, int dtype, @Cast("int64_t") long m, @Cast("int64_t") long k,
        @Cast("int64_t") long r, float scaling, float p, @Cast("uint64_t") long seed, @Cast("uint64_t") long stream);

    static native int plora_cpu_dy_pass(@Cast("const void*") long dy, @Cast("int64_t") long ldDy,
        @Cast("const void*") long b, @Cast("int64_t") long ldB, @Cast("const void*") long ss,
        @Cast("int64_t") long ldSs, @Cast("void*") long ds, @Cast("int64_t") long ldDs, @Cast("float*") long db,
        @Cast("int64_t") long ldDb, int dtype, @Cast("int64_t") long m, @Cast("int64_t") long n,
        @Cast("int64_t") long r, float scaling);

    static native int plora_cpu_da_dx(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long ds, @Cast("int64_t") long ldDs, @Cast("const void*") long a,
        @Cast("int64_t") long ldA, @Cast("float*") long da, @Cast("int64_t") long ldDa, @Cast("void*") long dx,
        @Cast("int64_t") long ldDx, int dtype, @Cast("int64_t") long m, @Cast("int64_t") long k,
        @Cast("int64_t") long r, float p, @Cast("uint64_t") long seed, @Cast("uint64_t") long stream);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/lora.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_dropout_mask(@Cast("void*") long out, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, float p, @Cast("uint64_t") long seed,
        @Cast("uint64_t") long streamId, @Cast("void*") long stream);

    static native int plora_cuda_shrink(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long a, @Cast("int64_t") long ldA, @Cast("void*") long out,
        @Cast("int64_t") long ldOut, int dtype, @Cast("int64_t") long m, @Cast("int64_t") long k,
        @Cast("int64_t") long r, float scaling, float p, @Cast("uint64_t") long seed,
        @Cast("uint64_t") long streamId, @Cast("void*") long stream);

    static native int plora_cuda_dy_pass(@Cast("const void*") long dy, @Cast("int64_t") long ldDy,
        @Cast("const void*") long b, @Cast("int64_t") long ldB, @Cast("const void*") long ss,
        @Cast("int64_t") long ldSs, @Cast("void*") long ds, @Cast("int64_t") long ldDs, @Cast("float*") long db,
        @Cast("int64_t") long ldDb, int dtype, @Cast("int64_t") long m, @Cast("int64_t") long n,
        @Cast("int64_t") long r, float scaling, @Cast("void*") long stream);

    static native int plora_cuda_da_dx(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long ds, @Cast("int64_t") long ldDs, @Cast("const void*") long a,
        @Cast("int64_t") long ldA, @Cast("float*") long da, @Cast("int64_t") long ldDa, @Cast("void*") long dx,
        @Cast("int64_t") long ldDx, int dtype, @Cast("int64_t") long m, @Cast("int64_t") long k,
        @Cast("int64_t") long r, float p, @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId,
        @Cast("void*") long stream);
  }
}
