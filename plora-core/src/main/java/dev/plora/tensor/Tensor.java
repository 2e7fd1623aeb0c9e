package dev.plora.tensor;

import dev.plora.backend.Backend;
import java.nio.FloatBuffer;

/**
 * A 2-D row-major matrix in a backend's memory: {@code rows x cols} elements of one dtype, rows
 * {@code ld} elements apart. A tensor either owns its storage or is a view of a sub-matrix of
 * another tensor's storage. Closing is idempotent; closing the owner frees the memory and makes
 * every view of it unusable; any use of a closed tensor throws {@link IllegalStateException}.
 *
 * <p>Tensors are made by a {@link Backend} ({@code backend.allocate(...)}) or a {@link
 * TensorScope}.
 */
public final class Tensor implements AutoCloseable {
  private final TensorStorage storage;
  private final long offset; // elements from the storage start to element [0,0]
  private final long origin; // elements from the storage start to [0,0] of the tensor this is a view of
  private final int rows;
  private final int cols;
  private final int ld;
  private final DType dtype;
  private final boolean owner;
  private volatile boolean closed;

  private Tensor(TensorStorage storage, long offset, long origin, int rows, int cols, int ld, DType dtype,
      boolean owner) {
    this.storage = storage;
    this.offset = offset;
    this.origin = origin;
    this.rows = rows;
    this.cols = cols;
    this.ld = ld;
    this.dtype = dtype;
    this.owner = owner;
  }

  /**
   * Wraps a fresh allocation; for backend implementations. The storage must hold at least
   * {@code rows * ld} elements of {@code dtype}.
   */
  public static Tensor owning(TensorStorage storage, int rows, int cols, int ld, DType dtype) {
    if (rows <= 0 || cols <= 0 || ld < cols) {
      throw new IllegalArgumentException("tensor shape [" + rows + "," + cols + "] with ld " + ld + " is invalid");
    }
    if ((long) rows * ld * dtype.byteSize() > storage.bytes()) {
      throw new IllegalArgumentException("storage of " + storage.bytes() + " bytes is too small for ["
          + rows + "," + cols + "] ld " + ld + " " + dtype);
    }
    return new Tensor(storage, 0, 0, rows, cols, ld, dtype, true);
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  /** Elements between the starts of consecutive rows (≥ cols). */
  public int ld() {
    return ld;
  }

  public DType dtype() {
    return dtype;
  }

  public Backend backend() {
    return storage.backend();
  }

  public Device device() {
    return storage.backend().device();
  }

  public long elementCount() {
    return (long) rows * cols;
  }

  /** True when rows follow each other with no gap (ld == cols). */
  public boolean isContiguous() {
    return ld == cols || rows == 1;
  }

  public boolean isView() {
    return !owner;
  }

  public boolean isClosed() {
    return closed || storage.isReleased();
  }

  /** "[rows,cols]", for messages. */
  public String shape() {
    return "[" + rows + "," + cols + "]";
  }

  /** Throws {@link IllegalStateException} naming {@code argument} if this tensor was closed. */
  public Tensor requireOpen(String argument) {
    if (isClosed()) {
      throw new IllegalStateException(argument + ": tensor " + this + " is closed"
          + (closed ? "" : " (its storage was freed by the tensor that owns it)"));
    }
    return this;
  }

  /** Native address of element [0,0]; for backend implementations. */
  public long address() {
    requireOpen("tensor");
    return storage.address() + offset * dtype.byteSize();
  }

  /**
   * The sub-matrix {@code [row, row+rows) x [col, col+cols)} as a view sharing this tensor's
   * memory (same leading dimension). Closing the view does not free memory.
   */
  public Tensor view(int row, int col, int rows, int cols) {
    requireOpen("view of");
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("view: expected rows > 0 and cols > 0, got shape [" + rows + "," + cols + "]");
    }
    if (row < 0 || col < 0 || (long) row + rows > this.rows || (long) col + cols > this.cols) {
      throw new IllegalArgumentException("view [" + row + ":" + ((long) row + rows) + ", " + col + ":"
          + ((long) col + cols) + "] (shape [" + rows + "," + cols + "]) is outside its parent of shape "
          + shape());
    }
    return new Tensor(storage, offset + (long) row * ld + col, origin, rows, cols, ld, dtype, false);
  }

  /**
   * A contiguous {@code [rows, cols]} view of {@code dtype} that starts {@code byteOffset} bytes
   * after this contiguous tensor's first element and lies within it: how one allocation (an arena)
   * holds tensors of several dtypes. The offset must be a multiple of the dtype's size.
   */
  public Tensor carve(long byteOffset, int rows, int cols, DType dtype) {
    requireOpen("carve from");
    if (dtype == null || rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("carve: expected rows > 0, cols > 0 and a dtype, got [" + rows + "," + cols
          + "] " + dtype);
    }
    if (!isContiguous()) {
      throw new IllegalArgumentException("carve: tensor " + this + " is not contiguous");
    }
    long start = offset * this.dtype.byteSize() + byteOffset;
    long end = (long) rows * cols * dtype.byteSize() + byteOffset;
    if (byteOffset < 0 || start % dtype.byteSize() != 0 || end > elementCount() * this.dtype.byteSize()) {
      throw new IllegalArgumentException("carve: [" + rows + "," + cols + "] " + dtype + " at byte " + byteOffset
          + " does not lie, aligned, within " + this);
    }
    return new Tensor(storage, start / dtype.byteSize(), start / dtype.byteSize(), rows, cols, cols, dtype, false);
  }

  /** Rows {@code [row, row+rows)}, all columns. */
  public Tensor rowsView(int row, int rows) {
    return view(row, 0, rows, cols);
  }

  /** Columns {@code [col, col+cols)}, all rows. */
  public Tensor colsView(int col, int cols) {
    return view(0, col, rows, cols);
  }

  /**
   * True when the two tensors share at least one element. Views of one matrix (an allocation,
   * or a buffer {@link #carve carved} from one) with the same leading dimension are compared as
   * rectangles, so disjoint column blocks of one buffer do not overlap; otherwise their byte
   * ranges are compared.
   */
  public boolean overlaps(Tensor other) {
    if (storage != other.storage) {
      return false;
    }
    if (origin == other.origin && ld == other.ld && dtype == other.dtype) { // views of one matrix
      long r0 = (offset - origin) / ld, c0 = (offset - origin) % ld;
      long r1 = (other.offset - origin) / ld, c1 = (other.offset - origin) % ld;
      return r0 < r1 + other.rows && r1 < r0 + rows && c0 < c1 + other.cols && c1 < c0 + cols;
    }
    long b0 = offset * dtype.byteSize();
    long e0 = (offset + (long) (rows - 1) * ld + cols) * dtype.byteSize();
    long b1 = other.offset * other.dtype.byteSize();
    long e1 = (other.offset + (long) (other.rows - 1) * other.ld + other.cols) * other.dtype.byteSize();
    return b0 < e1 && b1 < e0;
  }

  /** Copies {@code rows*cols} values, row-major, into this tensor (rounded to its dtype). */
  public Tensor copyFrom(float[] values) {
    backend().write(this, values);
    return this;
  }

  /** Copies the {@code rows*cols} values remaining in {@code values} into this tensor. */
  public Tensor copyFrom(FloatBuffer values) {
    backend().write(this, values);
    return this;
  }

  /** Appends this tensor's values (fp32, row-major) to {@code values}. */
  public void copyTo(FloatBuffer values) {
    backend().read(this, values);
  }

  /** This tensor's values as fp32, row-major, {@code rows*cols} long. */
  public float[] toFloatArray() {
    return backend().read(this);
  }

  /** Copies {@code values} (row-major) into this I32 tensor; returns this. */
  public Tensor copyFrom(int[] values) {
    backend().write(this, values);
    return this;
  }

  /** This I32 tensor's values, row-major. */
  public int[] toIntArray() {
    return backend().readInts(this);
  }

  public Tensor fill(float value) {
    backend().fill(this, value);
    return this;
  }

  /** Frees the memory if this tensor owns it. Idempotent. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (owner) {
      storage.release();
    }
  }

  @Override
  public String toString() {
    return shape() + (ld != cols ? " ld " + ld : "") + " " + dtype + " on " + storage.backend().name()
        + (owner ? "" : " (view)");
  }
}
