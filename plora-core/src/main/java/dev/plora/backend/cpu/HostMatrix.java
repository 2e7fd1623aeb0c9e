package dev.plora.backend.cpu;

import org.bytedeco.javacpp.DoublePointer;

/**
 * A dense row-major matrix of doubles in native host memory, the operand of {@link Lapack}: the
 * matrices of a decomposition stay native from one LAPACK or BLAS call to the next.
 */
public final class HostMatrix implements AutoCloseable {
  private final int rows;
  private final int cols;
  private DoublePointer data;

  private HostMatrix(int rows, int cols, DoublePointer data) {
    this.rows = rows;
    this.cols = cols;
    this.data = data;
  }

  /** An uninitialized rows x cols matrix. */
  public static HostMatrix allocate(int rows, int cols) {
    checkShape(rows, cols);
    return new HostMatrix(rows, cols, new DoublePointer((long) rows * cols));
  }

  /** A copy of {@code values} [rows, cols], row-major. */
  public static HostMatrix of(double[] values, int rows, int cols) {
    checkShape(rows, cols);
    if (values == null || values.length != (long) rows * cols) {
      throw new IllegalArgumentException("values: expected " + (long) rows * cols + " for " + rows + " x " + cols
          + ", got " + (values == null ? "null" : values.length));
    }
    return new HostMatrix(rows, cols, new DoublePointer(values));
  }

  public int rows() {
    return rows;
  }

  public int cols() {
    return cols;
  }

  /** All elements, row-major. */
  public double[] toArray() {
    double[] out = new double[rows * cols];
    pointer().get(out);
    return out;
  }

  /** The first {@code count} columns, row-major [rows, count]. */
  public double[] leadingColumns(int count) {
    if (count < 0 || count > cols) {
      throw new IllegalArgumentException("count: expected 0.." + cols + ", got " + count);
    }
    double[] all = toArray();
    double[] out = new double[rows * count];
    for (int i = 0; i < rows; i++) {
      System.arraycopy(all, i * cols, out, i * count, count);
    }
    return out;
  }

  /** The memory, for the calls of {@link Lapack}; refused once closed. */
  DoublePointer pointer() {
    if (data == null) {
      throw new IllegalStateException("matrix [" + rows + ", " + cols + "]: closed");
    }
    return data;
  }

  @Override
  public void close() {
    if (data != null) {
      data.close();
      data = null;
    }
  }

  private static void checkShape(int rows, int cols) {
    if (rows < 1 || cols < 1 || (long) rows * cols > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("rows, cols: expected both ≥ 1 with rows·cols < 2^31, got " + rows + " x "
          + cols);
    }
  }
}
