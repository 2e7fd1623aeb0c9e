package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorStorage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Memory and coarse operations on one device. Every public method validates its arguments —
 * shapes, dtypes, owning backend, closed tensors — and throws {@link IllegalArgumentException}
 * or {@link IllegalStateException} naming the argument before any native call; implementations
 * only see valid input. Failures inside native code surface as {@link BackendException}.
 *
 * <p>A backend and its stream are meant for one thread at a time.
 */
public abstract class Backend implements AutoCloseable {
  private final AtomicLong nativeBytes = new AtomicLong();
  private volatile boolean closed;

  /** "cpu" or "cuda". */
  public abstract String name();

  public abstract Device device();

  /** One line about the device and libraries, for {@code plora info}. */
  public abstract String describe();

  /** Waits until all work queued on this backend has finished. */
  public abstract void synchronize();

  /** Bytes of native memory currently held by this backend's live tensors. */
  public final long nativeBytes() {
    return nativeBytes.get();
  }

  // ---------------------------------------------------------------- memory

  public final Tensor allocate(int rows, int cols, DType dtype) {
    return allocate(rows, cols, cols, dtype);
  }

  /** An uninitialised {@code rows x cols} tensor whose rows are {@code ld} elements apart. */
  public final Tensor allocate(int rows, int cols, int ld, DType dtype) {
    requireOpen();
    if (dtype == null) {
      throw new IllegalArgumentException("dtype: must not be null");
    }
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("shape: expected positive sizes, got [" + rows + "," + cols + "]");
    }
    if (ld < cols) {
      throw new IllegalArgumentException("ld: expected >= cols (" + cols + "), got " + ld);
    }
    long bytes = (long) rows * ld * dtype.byteSize(); // < 2^31 * 2^31 * 4: no overflow
    long address = allocateBytes(bytes);
    nativeBytes.addAndGet(bytes);
    return Tensor.owning(new Storage(address, bytes), rows, cols, ld, dtype);
  }

  /** A new tensor holding {@code values} (row-major, rows*cols long). */
  public final Tensor fromArray(float[] values, int rows, int cols, DType dtype) {
    Tensor t = allocate(rows, cols, dtype);
    try {
      write(t, values);
      return t;
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
  }

  /** Copies {@code values} (row-major, {@code dst.rows()*dst.cols()} long) into {@code dst}. */
  public final void write(Tensor dst, float[] values) {
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    write(dst, FloatBuffer.wrap(values));
  }

  /**
   * Copies the {@code dst.rows()*dst.cols()} values remaining in {@code values} (row-major) into
   * {@code dst}, rounded to its dtype. The buffer's position is left unchanged.
   */
  public final void write(Tensor dst, FloatBuffer values) {
    requireTensor("dst", dst);
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.remaining() != dst.elementCount()) {
      throw new IllegalArgumentException("values: expected " + dst.elementCount() + " floats for dst "
          + dst.shape() + ", got " + values.remaining());
    }
    ByteBuffer host = hostBuffer(dst);
    FloatBuffer in = values.duplicate();
    switch (dst.dtype()) {
      case F32 -> host.asFloatBuffer().put(in);
      case BF16 -> {
        while (in.hasRemaining()) {
          host.putShort(DType.floatToBf16(in.get()));
        }
      }
      case F16 -> {
        while (in.hasRemaining()) {
          host.putShort(DType.floatToF16(in.get()));
        }
      }
    }
    upload(host.clear(), dst);
  }

  /** {@code src}'s values as fp32, row-major. */
  public final float[] read(Tensor src) {
    requireTensor("src", src);
    float[] values = new float[Math.toIntExact(src.elementCount())];
    read(src, FloatBuffer.wrap(values));
    return values;
  }

  /**
   * Appends {@code src}'s values as fp32, row-major, to {@code values}, advancing its position by
   * {@code src.rows()*src.cols()}.
   */
  public final void read(Tensor src, FloatBuffer values) {
    requireTensor("src", src);
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.remaining() < src.elementCount()) {
      throw new IllegalArgumentException("values: " + values.remaining() + " floats remain but src " + src.shape()
          + " has " + src.elementCount());
    }
    ByteBuffer host = hostBuffer(src);
    download(src, host);
    switch (src.dtype()) {
      case F32 -> values.put(host.asFloatBuffer());
      case BF16 -> {
        while (host.hasRemaining()) {
          values.put(DType.bf16ToFloat(host.getShort()));
        }
      }
      case F16 -> {
        while (host.hasRemaining()) {
          values.put(DType.f16ToFloat(host.getShort()));
        }
      }
    }
  }

  /** {@code dst ← src}, converting between dtypes (round to nearest). Shapes must match. */
  public final void copy(Tensor src, Tensor dst) {
    requireTensor("src", src);
    requireTensor("dst", dst);
    requireShape("copy", "dst", dst, src.rows(), src.cols(), "src " + src.shape());
    requireDisjoint("copy", "dst", dst, "src", src);
    copyImpl(src, dst);
  }

  /** Every element of {@code dst} ← {@code value} (rounded to its dtype). */
  public final void fill(Tensor dst, float value) {
    requireTensor("dst", dst);
    fillImpl(dst, value);
  }

  // ---------------------------------------------------------------- GEMM

  /**
   * {@code c ← alpha·op(a)·op(b) + beta·c} with fp32 accumulation, where op transposes when
   * asked. {@code a} and {@code b} share a dtype; {@code c} has that dtype or F32. With beta = 0
   * c is not read (it may hold NaN).
   */
  public final void gemm(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c) {
    requireTensor("a", a);
    requireTensor("b", b);
    requireTensor("c", c);
    int m = transA ? a.cols() : a.rows();
    int k = transA ? a.rows() : a.cols();
    int kb = transB ? b.cols() : b.rows();
    int n = transB ? b.rows() : b.cols();
    if (k != kb) {
      throw new IllegalArgumentException("gemm: inner dimensions differ: op(a) is [" + m + "," + k + "] (a "
          + a.shape() + (transA ? " transposed" : "") + ") but op(b) is [" + kb + "," + n + "] (b " + b.shape()
          + (transB ? " transposed" : "") + ")");
    }
    requireShape("gemm", "c", c, m, n, "op(a)·op(b) [" + m + "," + n + "]");
    if (b.dtype() != a.dtype()) {
      throw new IllegalArgumentException("gemm: b has dtype " + b.dtype() + " but a has " + a.dtype());
    }
    if (c.dtype() != a.dtype() && c.dtype() != DType.F32) {
      throw new IllegalArgumentException("gemm: c has dtype " + c.dtype() + ", expected " + a.dtype() + " or F32");
    }
    requireDisjoint("gemm", "c", c, "a", a);
    requireDisjoint("gemm", "c", c, "b", b);
    requireFinite("alpha", alpha);
    requireFinite("beta", beta);
    gemmImpl(transA, a, transB, b, alpha, beta, c, m, n, k);
  }

  // ---------------------------------------------------------------- LoRA kernels

  /**
   * LoRA shrink: {@code out ← scaling · x̃ · aᵀ} where x̃ is {@code x} with dropout applied, for
   * x [M,K], a [r,K], out [M,r], all of one dtype, fp32 accumulation. {@code out} may be the
   * spare columns of the buffer {@code x} lives in (augmented layout), but not overlap x.
   */
  public final void shrink(Tensor x, Tensor a, float scaling, Dropout dropout, Tensor out) {
    requireTensor("x", x);
    requireTensor("a", a);
    requireTensor("out", out);
    if (dropout == null) {
      throw new IllegalArgumentException("dropout: must not be null (use Dropout.NONE)");
    }
    if (a.cols() != x.cols()) {
      throw new IllegalArgumentException("shrink: a has shape " + a.shape() + " but x has shape " + x.shape()
          + ": expected a [r," + x.cols() + "]");
    }
    requireShape("shrink", "out", out, x.rows(), a.rows(), "x " + x.shape() + " and a " + a.shape());
    requireDtype("shrink", "a", a, x.dtype());
    requireDtype("shrink", "out", out, x.dtype());
    requireDisjoint("shrink", "out", out, "x", x);
    requireDisjoint("shrink", "out", out, "a", a);
    requireFinite("scaling", scaling);
    shrinkImpl(x, a, scaling, dropout, out);
  }

  /**
   * Writes the dropout multipliers that {@link #shrink} applies to an activation of {@code out}'s
   * shape: 1/(1-p) where an element is kept, 0 where it is dropped.
   */
  public final void dropoutMask(Dropout dropout, Tensor out) {
    requireTensor("out", out);
    if (dropout == null) {
      throw new IllegalArgumentException("dropout: must not be null");
    }
    dropoutMaskImpl(dropout, out);
  }


  /**
   * LoRA dY pass, one pass over {@code dy}: {@code ds ← scaling·dy·b} and {@code db += dyᵀ·ss},
   * for dy [M,N], b [N,r], ss [M,r] (= scaling·S saved by the forward pass), ds [M,r] of dy's
   * dtype, and the fp32 gradient db [N,r].
   */
  public final void dyPass(Tensor dy, Tensor b, Tensor ss, float scaling, Tensor ds, Tensor db) {
    requireTensor("dy", dy);
    requireTensor("b", b);
    requireTensor("ss", ss);
    requireTensor("ds", ds);
    requireTensor("db", db);
    int r = b.cols();
    requireShape("dyPass", "b", b, dy.cols(), r, "dy " + dy.shape() + " (b is [N,r])");
    requireShape("dyPass", "ss", ss, dy.rows(), r, "dy " + dy.shape() + " and b " + b.shape());
    requireShape("dyPass", "ds", ds, dy.rows(), r, "dy " + dy.shape() + " and b " + b.shape());
    requireShape("dyPass", "db", db, dy.cols(), r, "b " + b.shape());
    requireDtype("dyPass", "b", b, dy.dtype());
    requireDtype("dyPass", "ss", ss, dy.dtype());
    requireDtype("dyPass", "ds", ds, dy.dtype());
    requireDtype("dyPass", "db", db, DType.F32);
    requireDisjoint("dyPass", "ds", ds, new String[] {"dy", "b", "ss", "db"}, dy, b, ss, db);
    requireDisjoint("dyPass", "db", db, new String[] {"dy", "b", "ss"}, dy, b, ss);
    requireFinite("scaling", scaling);
    dyPassImpl(dy, b, ss, scaling, ds, db);
  }

  /**
   * LoRA dA / dX update, one pass over {@code x}: {@code da += dsᵀ·x̃} and, when {@code dx} is
   * not null, {@code dx += mask⊙(ds·a)/(1−p)}, with x̃ and the mask of {@code dropout} exactly
   * as in {@link #shrink}. x [M,K], ds [M,r], a [r,K], dx [M,K] share a dtype; da [r,K] is fp32.
   */
  public final void daDx(Tensor x, Tensor ds, Tensor a, Dropout dropout, Tensor da, Tensor dx) {
    requireTensor("x", x);
    requireTensor("ds", ds);
    requireTensor("a", a);
    requireTensor("da", da);
    if (dropout == null) {
      throw new IllegalArgumentException("dropout: must not be null (use Dropout.NONE)");
    }
    int r = a.rows();
    requireShape("daDx", "a", a, r, x.cols(), "x " + x.shape() + " (a is [r,K])");
    requireShape("daDx", "ds", ds, x.rows(), r, "x " + x.shape() + " and a " + a.shape());
    requireShape("daDx", "da", da, r, x.cols(), "a " + a.shape());
    requireDtype("daDx", "ds", ds, x.dtype());
    requireDtype("daDx", "a", a, x.dtype());
    requireDtype("daDx", "da", da, DType.F32);
    requireDisjoint("daDx", "da", da, new String[] {"x", "ds", "a"}, x, ds, a);
    if (dx != null) {
      requireTensor("dx", dx);
      requireShape("daDx", "dx", dx, x.rows(), x.cols(), "x " + x.shape());
      requireDtype("daDx", "dx", dx, x.dtype());
      requireDisjoint("daDx", "dx", dx, new String[] {"x", "ds", "a", "da"}, x, ds, a, da);
    }
    daDxImpl(x, ds, a, dropout, da, dx);
  }

  // ---------------------------------------------------------------- elementwise

  /** {@code y ← alpha·x + beta·y} (y is not read when beta = 0); dtypes may differ. */
  public final void axpby(float alpha, Tensor x, float beta, Tensor y) {
    requireTensor("x", x);
    requireTensor("y", y);
    requireShape("axpby", "y", y, x.rows(), x.cols(), "x " + x.shape());
    requireFinite("alpha", alpha);
    requireFinite("beta", beta);
    if (!sameElements(x, y)) {
      requireDisjoint("axpby", "y", y, "x", x); // elementwise in place is fine, a shifted overlap is not
    }
    axpbyImpl(alpha, x, beta, y);
  }

  /** {@code y[i,:] += bias[0,:]} for bias [1,N]. */
  public final void addBias(Tensor y, Tensor bias) {
    requireTensor("y", y);
    requireTensor("bias", bias);
    requireShape("addBias", "bias", bias, 1, y.cols(), "y " + y.shape());
    requireDisjoint("addBias", "y", y, "bias", bias);
    addBiasImpl(y, bias);
  }

  /** Uniform values in [low, high) from the Philox stream (seed, stream), element i = row·cols + col. */
  public final void fillUniform(Tensor out, float low, float high, long seed, long stream) {
    requireTensor("out", out);
    requireFinite("low", low);
    requireFinite("high", high);
    if (!(low <= high)) {
      throw new IllegalArgumentException("fillUniform: expected low <= high, got [" + low + ", " + high + ")");
    }
    randomFillImpl(out, false, low, high, seed, stream);
  }

  /** Normal values (mean, std) from the Philox stream (seed, stream), element i = row·cols + col. */
  public final void fillNormal(Tensor out, float mean, float std, long seed, long stream) {
    requireTensor("out", out);
    requireFinite("mean", mean);
    requireFinite("std", std);
    if (std < 0) {
      throw new IllegalArgumentException("fillNormal: std: expected >= 0, got " + std);
    }
    randomFillImpl(out, true, mean, std, seed, stream);
  }

  /** The number of NaN and infinite elements of {@code x} (waits for queued work). */
  public final long countNonFinite(Tensor x) {
    requireTensor("x", x);
    return countNonFiniteImpl(x);
  }

  // ---------------------------------------------------------------- lifecycle

  public final boolean isClosed() {
    return closed;
  }

  /** Releases the backend's own resources (stream, handles). Idempotent. */
  @Override
  public final void close() {
    if (!closed) {
      closed = true;
      release();
    }
  }

  // ---------------------------------------------------------------- for implementations

  /** Native memory of {@code bytes} (> 0); throws {@link BackendException} when out of memory. */
  protected abstract long allocateBytes(long bytes);

  protected abstract void freeBytes(long address, long bytes);

  /** Host bytes (dst's dtype, rows packed with no gap) into the possibly strided dst. */
  protected abstract void upload(ByteBuffer host, Tensor dst);

  /** The possibly strided src into host bytes (src's dtype, rows packed with no gap). */
  protected abstract void download(Tensor src, ByteBuffer host);

  protected abstract void copyImpl(Tensor src, Tensor dst);

  protected abstract void fillImpl(Tensor dst, float value);

  protected abstract void gemmImpl(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta,
      Tensor c, int m, int n, int k);

  protected abstract void shrinkImpl(Tensor x, Tensor a, float scaling, Dropout dropout, Tensor out);

  protected abstract void dropoutMaskImpl(Dropout dropout, Tensor out);

  protected abstract void dyPassImpl(Tensor dy, Tensor b, Tensor ss, float scaling, Tensor ds, Tensor db);

  protected abstract void daDxImpl(Tensor x, Tensor ds, Tensor a, Dropout dropout, Tensor da, Tensor dx);

  protected abstract void axpbyImpl(float alpha, Tensor x, float beta, Tensor y);

  protected abstract void addBiasImpl(Tensor y, Tensor bias);

  protected abstract void randomFillImpl(Tensor out, boolean normal, float a, float b, long seed, long stream);

  protected abstract long countNonFiniteImpl(Tensor x);

  protected abstract void release();

  /** Turns a native status into a {@link BackendException} carrying the library's message. */
  protected final void check(int status, String operation, String lastError) {
    if (status != 0) {
      throw new BackendException(name() + " " + operation + " failed (status " + status + "): " + lastError);
    }
  }

  // ---------------------------------------------------------------- validation

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("backend " + name() + " is closed");
    }
  }

  private void requireTensor(String argument, Tensor t) {
    requireOpen();
    if (t == null) {
      throw new IllegalArgumentException(argument + ": must not be null");
    }
    t.requireOpen(argument);
    if (t.backend() != this) {
      throw new IllegalArgumentException(argument + ": tensor " + t + " belongs to backend " + t.backend().name()
          + ", not to this " + name() + " backend");
    }
  }

  private static void requireShape(String op, String argument, Tensor t, int rows, int cols, String because) {
    if (t.rows() != rows || t.cols() != cols) {
      throw new IllegalArgumentException(op + ": " + argument + " has shape " + t.shape() + ", expected ["
          + rows + "," + cols + "] from " + because);
    }
  }

  private static void requireDtype(String op, String argument, Tensor t, DType expected) {
    if (t.dtype() != expected) {
      throw new IllegalArgumentException(op + ": " + argument + " has dtype " + t.dtype() + ", expected " + expected);
    }
  }

  private static void requireDisjoint(String op, String argument, Tensor t, String otherName, Tensor other) {
    if (t.overlaps(other)) {
      throw new IllegalArgumentException(op + ": " + argument + " " + t.shape() + " overlaps " + otherName + " "
          + other.shape() + " in memory");
    }
  }

  private static void requireDisjoint(String op, String argument, Tensor t, String[] names, Tensor... others) {
    for (int i = 0; i < others.length; i++) {
      requireDisjoint(op, argument, t, names[i], others[i]);
    }
  }

  private static void requireFinite(String argument, float value) {
    if (!Float.isFinite(value)) {
      throw new IllegalArgumentException(argument + ": expected a finite value, got " + value);
    }
  }

  private static boolean sameElements(Tensor a, Tensor b) {
    return a.address() == b.address() && a.ld() == b.ld() && a.dtype() == b.dtype();
  }

  private static ByteBuffer hostBuffer(Tensor t) {
    long bytes = t.elementCount() * t.dtype().byteSize();
    if (bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensor " + t + " is too large for a host array copy");
    }
    return ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.nativeOrder());
  }

  private final class Storage extends TensorStorage {
    Storage(long address, long bytes) {
      super(address, bytes);
    }

    @Override
    public Backend backend() {
      return Backend.this;
    }

    @Override
    protected void free(long address, long bytes) {
      freeBytes(address, bytes);
      nativeBytes.addAndGet(-bytes);
    }
  }
}
