package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorStorage;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.List;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Memory and coarse operations on one device. Every public method validates its arguments —
 * shapes, dtypes, owning backend, closed tensors — and throws {@link IllegalArgumentException}
 * or {@link IllegalStateException} naming the argument before any native call; implementations
 * only see valid input. Failures inside native code surface as {@link BackendException}.
 *
 * <p>Thread safety: every operation takes the backend's lock, and so does freeing a tensor's
 * memory. Use from several threads therefore works, one operation at a time (a backend has one
 * stream); a tensor closed by one thread while another uses it makes the other's call throw
 * {@link IllegalStateException} before any native code runs, or waits until that call is done —
 * never a use of freed memory. For throughput, give each thread its own backend.
 */
public abstract class Backend implements AutoCloseable {
  private final AtomicLong nativeBytes = new AtomicLong();
  /** The longest Java array the JVM allocates (a few below Integer.MAX_VALUE). */
  private static final int MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;
  private final HostStaging staging = new HostStaging(HostStaging.BYTES);
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

  public final synchronized Tensor allocate(int rows, int cols, DType dtype) {
    return allocate(rows, cols, cols, dtype);
  }

  /** An uninitialised {@code rows x cols} tensor whose rows are {@code ld} elements apart. */
  public final synchronized Tensor allocate(int rows, int cols, int ld, DType dtype) {
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
    long bytes; // rows · ld < 2^62, but times the element size it may not fit a long
    try {
      bytes = Math.multiplyExact((long) rows * ld, dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException("shape: [" + rows + "," + cols + "] with ld " + ld + " of " + dtype
          + " needs more than 2^63 bytes");
    }
    long address = allocateBytes(bytes);
    nativeBytes.addAndGet(bytes);
    return Tensor.owning(new Storage(address, bytes), rows, cols, ld, dtype);
  }

  /** A new tensor holding {@code values} (row-major, rows*cols long). */
  public final synchronized Tensor fromArray(float[] values, int rows, int cols, DType dtype) {
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
  public final synchronized void write(Tensor dst, float[] values) {
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    write(dst, FloatBuffer.wrap(values));
  }

  /**
   * Copies the {@code dst.rows()*dst.cols()} values remaining in {@code values} (row-major) into
   * {@code dst}, rounded to its dtype. The buffer's position is left unchanged.
   */
  public final synchronized void write(Tensor dst, FloatBuffer values) {
    requireTensor("dst", dst);
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.remaining() != dst.elementCount()) {
      throw new IllegalArgumentException("values: expected " + dst.elementCount() + " floats for dst "
          + dst.shape() + ", got " + values.remaining());
    }
    staging.write(dst, values, this::upload);
  }

  /** {@code src}'s values as fp32, row-major. */
  public final synchronized float[] read(Tensor src) {
    requireTensor("src", src);
    if (src.elementCount() > MAX_ARRAY_LENGTH) {
      throw new IllegalArgumentException("src: tensor " + src + " has " + src.elementCount()
          + " elements, more than a Java array holds (" + MAX_ARRAY_LENGTH + "); read it in views");
    }
    float[] values = new float[(int) src.elementCount()];
    read(src, FloatBuffer.wrap(values));
    return values;
  }

  /**
   * Appends {@code src}'s values as fp32, row-major, to {@code values}, advancing its position by
   * {@code src.rows()*src.cols()}.
   */
  public final synchronized void read(Tensor src, FloatBuffer values) {
    requireTensor("src", src);
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.remaining() < src.elementCount()) {
      throw new IllegalArgumentException("values: " + values.remaining() + " floats remain but src " + src.shape()
          + " has " + src.elementCount());
    }
    staging.read(src, values, this::download);
  }

  /** {@code dst ← src}, converting between dtypes (round to nearest). Shapes must match. */
  public final synchronized void copy(Tensor src, Tensor dst) {
    requireTensor("src", src);
    requireTensor("dst", dst);
    requireShape("copy", "dst", dst, src.rows(), src.cols(), "src " + src.shape());
    requireDisjoint("copy", "dst", dst, "src", src);
    copyImpl(src, dst);
  }

  /** Every element of {@code dst} ← {@code value} (rounded to its dtype). */
  public final synchronized void fill(Tensor dst, float value) {
    requireTensor("dst", dst);
    fillImpl(dst, value);
  }

  // ---------------------------------------------------------------- GEMM

  /**
   * {@code c ← alpha·op(a)·op(b) + beta·c} with fp32 accumulation, where op transposes when
   * asked. {@code a} and {@code b} share a dtype; {@code c} has that dtype or F32. With beta = 0
   * c is not read (it may hold NaN).
   */
  public final synchronized void gemm(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c) {
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
  public final synchronized void shrink(Tensor x, Tensor a, float scaling, Dropout dropout, Tensor out) {
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
  public final synchronized void dropoutMask(Dropout dropout, Tensor out) {
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
  public final synchronized void dyPass(Tensor dy, Tensor b, Tensor ss, float scaling, Tensor ds, Tensor db) {
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
  public final synchronized void daDx(Tensor x, Tensor ds, Tensor a, Dropout dropout, Tensor da, Tensor dx) {
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
  public final synchronized void axpby(float alpha, Tensor x, float beta, Tensor y) {
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
  public final synchronized void addBias(Tensor y, Tensor bias) {
    requireTensor("y", y);
    requireTensor("bias", bias);
    requireShape("addBias", "bias", bias, 1, y.cols(), "y " + y.shape());
    requireDisjoint("addBias", "y", y, "bias", bias);
    addBiasImpl(y, bias);
  }

  /** Uniform values in [low, high) from the Philox stream (seed, stream), element i = row·cols + col. */
  public final synchronized void fillUniform(Tensor out, float low, float high, long seed, long stream) {
    requireTensor("out", out);
    requireFinite("low", low);
    requireFinite("high", high);
    if (!(low <= high)) {
      throw new IllegalArgumentException("fillUniform: expected low <= high, got [" + low + ", " + high + ")");
    }
    randomFillImpl(out, false, low, high, seed, stream);
  }

  /** Normal values (mean, std) from the Philox stream (seed, stream), element i = row·cols + col. */
  public final synchronized void fillNormal(Tensor out, float mean, float std, long seed, long stream) {
    requireTensor("out", out);
    requireFinite("mean", mean);
    requireFinite("std", std);
    if (std < 0) {
      throw new IllegalArgumentException("fillNormal: std: expected >= 0, got " + std);
    }
    randomFillImpl(out, true, mean, std, seed, stream);
  }

  /** The number of NaN and infinite elements of {@code x} (waits for queued work). */
  public final synchronized long countNonFinite(Tensor x) {
    requireTensor("x", x);
    return countNonFiniteImpl(x);
  }


  // ---------------------------------------------------------------- training kernels

  /**
   * In-place merge {@code w ← w + c·b·a} with fp32 accumulation, rounded into w's dtype as asked
   * (stochastic rounding draws from Philox (seed, stream)); then, in the same call, {@code a ←
   * scaleA·a} and {@code b ← scaleB·b}. w [N,K], b [N,r], a [r,K]; a and b share a dtype.
   */
  public final synchronized void merge(Tensor w, Tensor b, Tensor a, float c, Rounding rounding, long seed, long stream,
      float scaleA, float scaleB) {
    requireTensor("w", w);
    requireTensor("b", b);
    requireTensor("a", a);
    if (rounding == null) {
      throw new IllegalArgumentException("rounding: must not be null");
    }
    int r = a.rows();
    requireShape("merge", "b", b, w.rows(), r, "w " + w.shape() + " and a " + a.shape());
    requireShape("merge", "a", a, r, w.cols(), "w " + w.shape() + " (a is [r,K])");
    requireDtype("merge", "b", b, a.dtype());
    if (rounding == Rounding.STOCHASTIC && w.dtype() == DType.F16) {
      throw new IllegalArgumentException("merge: stochastic rounding needs BF16 (or F32) w, got F16");
    }
    requireDisjoint("merge", "w", w, new String[] {"a", "b"}, a, b);
    requireDisjoint("merge", "a", a, "b", b);
    requireFinite("c", c);
    requireFinite("scaleA", scaleA);
    requireFinite("scaleB", scaleB);
    mergeImpl(w, b, a, c, rounding, seed, stream, scaleA, scaleB);
  }

  /**
   * One fused AdamW step over all slots (one native call). Parameters, gradients and moments
   * are contiguous fp32 of one shape per slot; the optional copies share one dtype.
   */
  public final synchronized void adamw(java.util.List<AdamwSlot> slots, AdamwHyper hyper) {
    requireOpen();
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
        requireTensor(at + (t == s.param() ? "param" : t == s.grad() ? "grad" : t == s.m() ? "m" : "v"), t);
        if (t.dtype() != DType.F32 || !t.isContiguous()) {
          throw new IllegalArgumentException(at + "tensor " + t + ": expected contiguous F32");
        }
        requireShape("adamw", at + "tensor", t, s.param().rows(), s.param().cols(), "param " + s.param().shape());
      }
      if (s.copy() != null) {
        requireTensor(at + "copy", s.copy());
        requireShape("adamw", at + "copy", s.copy(), s.param().rows(), s.param().cols(),
            "param " + s.param().shape());
        if (copyType != null && s.copy().dtype() != copyType) {
          throw new IllegalArgumentException(at + "copy has dtype " + s.copy().dtype() + ", others " + copyType);
        }
        copyType = s.copy().dtype();
        requireDisjoint("adamw", at + "copy", s.copy(), "param", s.param());
      }
      if (!Float.isFinite(s.lrScale()) || s.lrScale() < 0) {
        throw new IllegalArgumentException(at + "lrScale: expected a finite value >= 0, got " + s.lrScale());
      }
    }
    for (float f : new float[] {hyper.lr(), hyper.beta1(), hyper.beta2(), hyper.eps(), hyper.weightDecay(),
        hyper.gradScale(), hyper.biasCorrection1(), hyper.biasCorrection2()}) {
      requireFinite("adamw hyper-parameter", f);
    }
    if (!(hyper.biasCorrection1() > 0 && hyper.biasCorrection2() > 0)) {
      throw new IllegalArgumentException("adamw: bias corrections must be > 0, got " + hyper.biasCorrection1()
          + ", " + hyper.biasCorrection2());
    }
    if (!slots.isEmpty()) {
      adamwImpl(slots, copyType == null ? DType.F32 : copyType, hyper);
    }
  }

  /** Σ x² in double (waits for queued work). */
  public final synchronized double sumSquares(Tensor x) {
    requireTensor("x", x);
    return sumSquaresImpl(List.of(x));
  }

  /**
   * Σ x² over all the tensors, summed tensor by tensor in order, in one native call that waits
   * for queued work once (a global gradient norm without a device round trip per parameter).
   */
  public final synchronized double sumSquares(List<Tensor> xs) {
    if (xs == null) {
      throw new IllegalArgumentException("xs: must not be null");
    }
    for (int i = 0; i < xs.size(); i++) {
      requireTensor("xs[" + i + "]", xs.get(i));
    }
    return xs.isEmpty() ? 0.0 : sumSquaresImpl(xs);
  }

  /** {@code y ← gelu(x)} (exact erf form); y may be x itself. */
  public final synchronized void gelu(Tensor x, Tensor y) {
    requireTensor("x", x);
    requireTensor("y", y);
    requireShape("gelu", "y", y, x.rows(), x.cols(), "x " + x.shape());
    requireDtype("gelu", "y", y, x.dtype());
    if (!sameElements(x, y)) {
      requireDisjoint("gelu", "y", y, "x", x);
    }
    geluImpl(x, y);
  }

  /** {@code dx ← dy ⊙ gelu'(x)}; dx may be dy itself. */
  public final synchronized void geluBackward(Tensor x, Tensor dy, Tensor dx) {
    requireTensor("x", x);
    requireTensor("dy", dy);
    requireTensor("dx", dx);
    requireShape("geluBackward", "dy", dy, x.rows(), x.cols(), "x " + x.shape());
    requireShape("geluBackward", "dx", dx, x.rows(), x.cols(), "x " + x.shape());
    requireDtype("geluBackward", "dy", dy, x.dtype());
    requireDtype("geluBackward", "dx", dx, x.dtype());
    requireDisjoint("geluBackward", "dx", dx, "x", x);
    if (!sameElements(dy, dx)) {
      requireDisjoint("geluBackward", "dx", dx, "dy", dy);
    }
    geluBackwardImpl(x, dy, dx);
  }

  /**
   * Mean squared error of pred against target; when {@code dpred} is not null it receives
   * {@code 2(pred − target)/(rows·cols)} (it may be pred itself). Returns the loss.
   */
  public final synchronized double mse(Tensor pred, Tensor target, Tensor dpred) {
    requireTensor("pred", pred);
    requireTensor("target", target);
    requireShape("mse", "target", target, pred.rows(), pred.cols(), "pred " + pred.shape());
    requireDtype("mse", "target", target, pred.dtype());
    if (dpred != null) {
      requireTensor("dpred", dpred);
      requireShape("mse", "dpred", dpred, pred.rows(), pred.cols(), "pred " + pred.shape());
      requireDtype("mse", "dpred", dpred, pred.dtype());
      requireDisjoint("mse", "dpred", dpred, "target", target);
      if (!sameElements(pred, dpred)) {
        requireDisjoint("mse", "dpred", dpred, "pred", pred);
      }
    }
    return mseImpl(pred, target, dpred);
  }

  /**
   * Mean softmax cross-entropy of logits [M,C] against labels [M,1] (F32 holding class indices
   * 0..C−1); when {@code dlogits} is not null it receives {@code (softmax − onehot)/M}. A label
   * that is not a class index is an {@link IllegalArgumentException} and nothing is written.
   */
  public final synchronized double softmaxCrossEntropy(Tensor logits, Tensor labels, Tensor dlogits) {
    requireTensor("logits", logits);
    requireTensor("labels", labels);
    requireShape("softmaxCrossEntropy", "labels", labels, logits.rows(), 1, "logits " + logits.shape());
    requireDtype("softmaxCrossEntropy", "labels", labels, DType.F32);
    if (!labels.isContiguous()) {
      throw new IllegalArgumentException("softmaxCrossEntropy: labels must be contiguous, got " + labels);
    }
    if (dlogits != null) {
      requireTensor("dlogits", dlogits);
      requireShape("softmaxCrossEntropy", "dlogits", dlogits, logits.rows(), logits.cols(),
          "logits " + logits.shape());
      requireDtype("softmaxCrossEntropy", "dlogits", dlogits, logits.dtype());
      requireDisjoint("softmaxCrossEntropy", "dlogits", dlogits, new String[] {"logits", "labels"}, logits, labels);
    }
    return softmaxCrossEntropyImpl(logits, labels, dlogits);
  }

  // ---------------------------------------------------------------- lifecycle

  public final boolean isClosed() {
    return closed;
  }

  /** Releases the backend's own resources (stream, handles). Idempotent. */
  @Override
  public final synchronized void close() {
    if (!closed) {
      closed = true;
      release();
    }
  }

  // ---------------------------------------------------------------- for implementations

  /** Native memory of {@code bytes} (> 0); throws {@link BackendException} when out of memory. */
  protected abstract long allocateBytes(long bytes);

  protected abstract void freeBytes(long address, long bytes);

  /**
   * Host bytes (dst's dtype, rows packed with no gap) into the possibly strided dst. The host
   * buffer is reused once this returns: the copy must be complete by then.
   */
  protected abstract void upload(ByteBuffer host, Tensor dst);

  /** The possibly strided src into host bytes (src's dtype, rows packed with no gap), complete on return. */
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

  protected abstract void mergeImpl(Tensor w, Tensor b, Tensor a, float c, Rounding rounding, long seed, long stream,
      float scaleA, float scaleB);

  protected abstract void adamwImpl(java.util.List<AdamwSlot> slots, DType copyType, AdamwHyper hyper);

  protected abstract double sumSquaresImpl(List<Tensor> xs);

  protected abstract void geluImpl(Tensor x, Tensor y);

  protected abstract void geluBackwardImpl(Tensor x, Tensor dy, Tensor dx);

  protected abstract double mseImpl(Tensor pred, Tensor target, Tensor dpred);

  protected abstract double softmaxCrossEntropyImpl(Tensor logits, Tensor labels, Tensor dlogits);

  /** The tensors' addresses, dtypes and shapes as the native tables of a multi-tensor call. */
  protected static final class MatrixTable {
    public final long[] address, ld, rows, cols;
    public final int[] dtype;

    public MatrixTable(List<Tensor> xs) {
      int n = xs.size();
      address = new long[n];
      ld = new long[n];
      rows = new long[n];
      cols = new long[n];
      dtype = new int[n];
      for (int i = 0; i < n; i++) {
        Tensor x = xs.get(i);
        address[i] = x.address();
        ld[i] = x.ld();
        rows[i] = x.rows();
        cols[i] = x.cols();
        dtype[i] = x.dtype().code();
      }
    }
  }

  /** The slots as the parallel address/size arrays of the native AdamW ABI. */
  protected static final class AdamwTable {
    public final long[] params, grads, m, v, copies, copyLd, rows, cols;
    public final float[] lrScale;

    public AdamwTable(java.util.List<AdamwSlot> slots) {
      int n = slots.size();
      params = new long[n];
      grads = new long[n];
      m = new long[n];
      v = new long[n];
      copies = new long[n];
      copyLd = new long[n];
      rows = new long[n];
      cols = new long[n];
      lrScale = new float[n];
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
    }
  }

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

  // ---------------------------------------------------------------- leaks

  private static final Cleaner CLEANER = Cleaner.create();
  private static final AtomicLong LEAKS = new AtomicLong();
  private static volatile Consumer<String> leakReporter = System.err::println;

  /** True when {@code -Dplora.trackLeaks=true}: leaked tensors are reported with their allocation site. */
  public static boolean tracksLeaks() {
    return Boolean.getBoolean("plora.trackLeaks");
  }

  /** Tensors garbage-collected without {@code close()} since the JVM started (their memory was reclaimed). */
  public static long leakedTensors() {
    return LEAKS.get();
  }

  /** Where leak reports go (standard error by default). */
  public static void setLeakReporter(Consumer<String> reporter) {
    leakReporter = reporter == null ? System.err::println : reporter;
  }

  private final class Storage extends TensorStorage {
    private final Reclaim reclaim;
    private final Cleaner.Cleanable cleanable;

    Storage(long address, long bytes) {
      super(address, bytes);
      reclaim = new Reclaim(Backend.this, address, bytes, tracksLeaks() ? new Throwable("allocated here") : null);
      cleanable = CLEANER.register(this, reclaim);
    }

    @Override
    public Backend backend() {
      return Backend.this;
    }

    @Override
    protected void free(long address, long bytes) {
      reclaim.explicit = true;
      cleanable.clean();
    }
  }

  /**
   * Frees one allocation: when its tensor is closed, or — a leak — when the garbage collector
   * finds it unreachable. Holds no reference to the storage, so that the storage can be collected.
   */
  private static final class Reclaim implements Runnable {
    private final Backend backend;
    private final long address;
    private final long bytes;
    private final Throwable site;
    volatile boolean explicit;

    Reclaim(Backend backend, long address, long bytes, Throwable site) {
      this.backend = backend;
      this.address = address;
      this.bytes = bytes;
      this.site = site;
    }

    @Override
    public void run() {
      if (!explicit) {
        LEAKS.incrementAndGet();
        if (site != null) {
          StringWriter trace = new StringWriter();
          site.printStackTrace(new PrintWriter(trace));
          leakReporter.accept("plora: a tensor of " + bytes + " bytes on " + backend.name()
              + " was garbage-collected without close(); its memory is reclaimed. " + trace);
        }
      }
      synchronized (backend) { // never while an operation of this backend runs
        backend.freeBytes(address, bytes);
        backend.nativeBytes.addAndGet(-bytes);
      }
    }
  }
}
