package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.List;
import java.util.function.Consumer;

/**
 * Memory, host copies and kernels on one device. Every public method validates its arguments —
 * shapes, dtypes, owning backend, closed tensors — and throws {@link IllegalArgumentException}
 * or {@link IllegalStateException} naming the argument before any native call; a kernel method
 * delegates to its family ({@link Elementwise}, {@link Lora}, {@link Merge}, …), which holds that
 * validation. Failures inside native code surface as {@link BackendException}. The layer, and how
 * to add a family, is described in {@code docs/kernels.md}.
 *
 * <p>Thread safety: every operation takes the backend's lock, and so does freeing a tensor's
 * memory. Use from several threads therefore works, one operation at a time (a backend has one
 * stream); a tensor closed by one thread while another uses it makes the other's call throw
 * {@link IllegalStateException} before any native code runs, or waits until that call is done —
 * never a use of freed memory. For throughput, give each thread its own backend.
 */
public abstract class Backend implements AutoCloseable {
  /** The longest Java array the JVM allocates (a few below Integer.MAX_VALUE). */
  private static final int MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;
  private final NativeMemory memory = new NativeMemory(this);
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
    return memory.bytes();
  }

  // ---------------------------------------------------------------- memory

  public final synchronized Tensor allocate(int rows, int cols, DType dtype) {
    return allocate(rows, cols, cols, dtype);
  }

  /** An uninitialised {@code rows x cols} tensor whose rows are {@code ld} elements apart. */
  public final synchronized Tensor allocate(int rows, int cols, int ld, DType dtype) {
    Args.open(this);
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
    return Tensor.owning(memory.allocate(bytes), rows, cols, ld, dtype);
  }

  /** A new tensor holding {@code values} (row-major, rows*cols long) in a float dtype. */
  public final synchronized Tensor fromArray(float[] values, int rows, int cols, DType dtype) {
    if (dtype == DType.I32) { // before allocating: a refused call allocates nothing
      throw new IllegalArgumentException("dtype: I32 tensors hold ints; make one with fromInts");
    }
    return allocateFilled(rows, cols, dtype, t -> write(t, values));
  }

  /** A new I32 tensor holding {@code values} (row-major, rows*cols long), e.g. token ids or labels. */
  public final synchronized Tensor fromInts(int[] values, int rows, int cols) {
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.length != (long) rows * cols) { // before allocating
      throw new IllegalArgumentException("values: expected " + (long) rows * cols + " ints for [" + rows + ","
          + cols + "], got " + values.length);
    }
    return allocateFilled(rows, cols, DType.I32, t -> write(t, values));
  }

  /** A new tensor written by {@code fill}; freed again when the write is refused or fails. */
  private Tensor allocateFilled(int rows, int cols, DType dtype, Consumer<Tensor> fill) {
    Tensor t = allocate(rows, cols, dtype);
    try {
      fill.accept(t);
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
   * {@code dst}, rounded to its dtype, a float dtype. The buffer's position is left unchanged.
   */
  public final synchronized void write(Tensor dst, FloatBuffer values) {
    Args.tensor(this, "dst", dst);
    requireFloatHost("dst", dst, "write(Tensor, int[])");
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.remaining() != dst.elementCount()) {
      throw new IllegalArgumentException("values: expected " + dst.elementCount() + " floats for dst "
          + dst.shape() + ", got " + values.remaining());
    }
    staging.write(dst, values, this::upload);
  }

  /** Copies {@code values} (row-major, {@code dst.rows()*dst.cols()} long) into the I32 {@code dst}, exactly. */
  public final synchronized void write(Tensor dst, int[] values) {
    Args.tensor(this, "dst", dst);
    requireIntHost("dst", dst);
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.length != dst.elementCount()) {
      throw new IllegalArgumentException("values: expected " + dst.elementCount() + " ints for dst "
          + dst.shape() + ", got " + values.length);
    }
    staging.write(dst, IntBuffer.wrap(values), this::upload);
  }

  /** {@code src}'s values as fp32, row-major; src has a float dtype. */
  public final synchronized float[] read(Tensor src) {
    Args.tensor(this, "src", src);
    requireFloatHost("src", src, "readInts");
    requireArrayLength(src);
    float[] values = new float[(int) src.elementCount()];
    read(src, FloatBuffer.wrap(values));
    return values;
  }

  /**
   * Appends {@code src}'s values as fp32, row-major, to {@code values}, advancing its position by
   * {@code src.rows()*src.cols()}; src has a float dtype.
   */
  public final synchronized void read(Tensor src, FloatBuffer values) {
    Args.tensor(this, "src", src);
    requireFloatHost("src", src, "readInts");
    if (values == null) {
      throw new IllegalArgumentException("values: must not be null");
    }
    if (values.remaining() < src.elementCount()) {
      throw new IllegalArgumentException("values: " + values.remaining() + " floats remain but src " + src.shape()
          + " has " + src.elementCount());
    }
    staging.read(src, values, this::download);
  }

  /** The I32 {@code src}'s values, row-major, exactly. */
  public final synchronized int[] readInts(Tensor src) {
    Args.tensor(this, "src", src);
    requireIntHost("src", src);
    requireArrayLength(src);
    int[] values = new int[(int) src.elementCount()];
    staging.read(src, IntBuffer.wrap(values), this::download);
    return values;
  }

  private static void requireFloatHost(String argument, Tensor t, String intMethod) {
    if (t.dtype() == DType.I32) {
      throw new IllegalArgumentException(argument + ": tensor " + t + " holds ints, not floats; use " + intMethod);
    }
  }

  private static void requireIntHost(String argument, Tensor t) {
    if (t.dtype() != DType.I32) {
      throw new IllegalArgumentException(argument + ": tensor " + t + " has dtype " + t.dtype()
          + ", expected I32 for int values");
    }
  }

  private static void requireArrayLength(Tensor src) {
    if (src.elementCount() > MAX_ARRAY_LENGTH) {
      throw new IllegalArgumentException("src: tensor " + src + " has " + src.elementCount()
          + " elements, more than a Java array holds (" + MAX_ARRAY_LENGTH + "); read it in views");
    }
  }

  /**
   * {@code dst ← src}, converting between the float dtypes (round to nearest); I32 copies only to
   * I32. Shapes must match.
   */
  public final void copy(Tensor src, Tensor dst) {
    Elementwise.copy(this, src, dst);
  }

  /** Every element of {@code dst} ← {@code value} (rounded to its dtype; an integer for I32). */
  public final void fill(Tensor dst, float value) {
    Elementwise.fill(this, dst, value);
  }

  // ---------------------------------------------------------------- kernels, one family each

  /** See {@link Gemm#gemm}. */
  public final void gemm(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c) {
    Gemm.gemm(this, transA, a, transB, b, alpha, beta, c);
  }

  /** See {@link Lora#shrink}. */
  public final void shrink(Tensor x, Tensor a, float scaling, Dropout dropout, Tensor out) {
    LoraKernels.shrink(this, x, a, scaling, dropout, out);
  }

  /** See {@link Lora#dropoutMask}. */
  public final void dropoutMask(Dropout dropout, Tensor out) {
    LoraKernels.dropoutMask(this, dropout, out);
  }

  /** See {@link Lora#dyPass}. */
  public final void dyPass(Tensor dy, Tensor b, Tensor ss, float scaling, Tensor ds, Tensor db) {
    LoraKernels.dyPass(this, dy, b, ss, scaling, ds, db);
  }

  /** See {@link Lora#daDx}. */
  public final void daDx(Tensor x, Tensor ds, Tensor a, Dropout dropout, Tensor da, Tensor dx) {
    LoraKernels.daDx(this, x, ds, a, dropout, da, dx);
  }

  /** See {@link Elementwise#axpby}. */
  public final void axpby(float alpha, Tensor x, float beta, Tensor y) {
    Elementwise.axpby(this, alpha, x, beta, y);
  }

  /** See {@link Elementwise#addBias}. */
  public final void addBias(Tensor y, Tensor bias) {
    Elementwise.addBias(this, y, bias);
  }

  /** See {@link RandomFill#uniform}. */
  public final void fillUniform(Tensor out, float low, float high, long seed, long stream) {
    RandomFill.uniform(this, out, low, high, seed, stream);
  }

  /** See {@link RandomFill#normal}. */
  public final void fillNormal(Tensor out, float mean, float std, long seed, long stream) {
    RandomFill.normal(this, out, mean, std, seed, stream);
  }

  /** See {@link Reductions#countNonFinite}. */
  public final long countNonFinite(Tensor x) {
    return Reductions.countNonFinite(this, x);
  }

  /** See {@link Merge#merge}. */
  public final void merge(Tensor w, Tensor b, Tensor a, float c, Rounding rounding, long seed, long stream,
      float scaleA, float scaleB) {
    Merge.merge(this, w, b, a, c, rounding, seed, stream, scaleA, scaleB);
  }

  /** See {@link AdamwKernels#step}. */
  public final void adamw(List<AdamwSlot> slots, AdamwHyper hyper) {
    AdamwKernels.step(this, slots, hyper);
  }

  /** Σ x² in double (waits for queued work). */
  public final double sumSquares(Tensor x) {
    return Reductions.sumSquares(this, x);
  }

  /** See {@link Reductions#sumSquares(Backend, List)}. */
  public final double sumSquares(List<Tensor> xs) {
    return Reductions.sumSquares(this, xs);
  }

  /** See {@link Gelu#forward}. */
  public final void gelu(Tensor x, Tensor y) {
    Gelu.forward(this, x, y);
  }

  /** See {@link Gelu#backward}. */
  public final void geluBackward(Tensor x, Tensor dy, Tensor dx) {
    Gelu.backward(this, x, dy, dx);
  }

  /** See {@link Losses#mse}. */
  public final double mse(Tensor pred, Tensor target, Tensor dpred) {
    return Losses.mse(this, pred, target, dpred);
  }

  /** See {@link Losses#softmaxCrossEntropy}. */
  public final double softmaxCrossEntropy(Tensor logits, Tensor labels, Tensor dlogits) {
    return Losses.softmaxCrossEntropy(this, logits, labels, dlogits);
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

  // ---------------------------------------------------------------- the device interface

  /*
   * What every kernel family needs of a device, implemented by CpuBackend and CudaBackend and used
   * by the families of this package. Protected, not public: Java has no narrower access that
   * reaches the two implementations in their own packages. Families validate before they call.
   */

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

  /**
   * {@code c ← alpha·op(a)·op(b) + beta·c} through the device's BLAS, for arguments {@link Gemm}
   * has validated; op(a) is [m,k], op(b) [k,n].
   */
  protected abstract void gemmImpl(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta,
      Tensor c, int m, int n, int k);

  /**
   * The address of the stream kernels are queued on, with the device made current on the calling
   * thread; 0 on the host, where kernels run synchronously.
   */
  protected abstract long stream();

  /**
   * Device memory of PLORA_CUDA_SCRATCH_BYTES (as the library reports it) for the kernels that
   * return a number to the host; 0 on the host. Work on the backend's one stream is ordered, so
   * its uses never overlap.
   */
  protected abstract long scratch();

  /**
   * Device memory of at least {@code bytes} (the AdamW slot table), owned by the backend and grown
   * on demand; 0 on the host.
   */
  protected abstract long workspace(long bytes);

  /** The message of the last failure of the kernel library on this thread. */
  protected abstract String lastError();

  /** The value of an ABI constant of the kernel library by its C name, -1 when it has none. */
  protected abstract long constant(String name);

  /** Releases the backend's own resources (stream, handles, workspace). */
  protected abstract void release();

  /** Turns a native status into a {@link BackendException} carrying the library's message. */
  protected final void check(int status, String operation) {
    if (status != 0) {
      throw new BackendException(name() + " " + operation + " failed (status " + status + "): " + lastError());
    }
  }

  /**
   * Checks that the kernel library agrees with the Java side on every code they exchange (dtypes,
   * rounding modes, distributions); implementations call it once their library is loaded.
   */
  protected final void verifyAbi(String library) {
    NativeAbi.verify(library, this::constant);
  }

  final boolean onCuda() {
    return device() == Device.CUDA;
  }

  /** The tensors' addresses, dtypes and shapes as the native tables of a multi-tensor call. */
  static final class MatrixTable {
    final long[] address, ld, rows, cols;
    final int[] dtype;

    MatrixTable(List<Tensor> xs) {
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

  // ---------------------------------------------------------------- leaks

  /** True when {@code -Dplora.trackLeaks=true}: leaked tensors are reported with their allocation site. */
  public static boolean tracksLeaks() {
    return NativeMemory.tracksLeaks();
  }

  /** Tensors garbage-collected without {@code close()} since the JVM started (their memory was reclaimed). */
  public static long leakedTensors() {
    return NativeMemory.leaked();
  }

  /** Where leak reports go; null restores the default, a warning through SLF4J (logger {@code dev.plora.backend.NativeMemory}). */
  public static void setLeakReporter(Consumer<String> reporter) {
    NativeMemory.setLeakReporter(reporter);
  }
}
