package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;

/**
 * The argument checks the kernel families share. Each throws {@link IllegalArgumentException} (or
 * {@link IllegalStateException} for a closed backend or tensor) naming the operation and the
 * argument, with the expected and the actual value, before any native call.
 */
final class Args {
  private Args() {}

  static void open(Backend backend) {
    if (backend == null) {
      throw new IllegalArgumentException("backend: must not be null");
    }
    if (backend.isClosed()) {
      throw new IllegalStateException("backend " + backend.name() + " is closed");
    }
  }

  /** {@code t} is an open tensor of {@code backend}, which is open. */
  static void tensor(Backend backend, String argument, Tensor t) {
    open(backend);
    if (t == null) {
      throw new IllegalArgumentException(argument + ": must not be null");
    }
    t.requireOpen(argument);
    if (t.backend() != backend) {
      throw new IllegalArgumentException(argument + ": tensor " + t + " belongs to backend " + t.backend().name()
          + ", not to this " + backend.name() + " backend");
    }
  }

  /** {@link #tensor}, and of a float dtype: the kernels compute on floats, never on I32. */
  static void floats(Backend backend, String op, String argument, Tensor t) {
    tensor(backend, argument, t);
    if (!t.dtype().isFloat()) {
      throw new IllegalArgumentException(op + ": " + argument + " has dtype " + t.dtype()
          + ", expected a float dtype (F32, BF16 or F16)");
    }
  }

  static void notNull(String argument, Object value, String hint) {
    if (value == null) {
      throw new IllegalArgumentException(argument + ": must not be null" + hint);
    }
  }

  static void shape(String op, String argument, Tensor t, int rows, int cols, String because) {
    if (t.rows() != rows || t.cols() != cols) {
      throw new IllegalArgumentException(op + ": " + argument + " has shape " + t.shape() + ", expected ["
          + rows + "," + cols + "] from " + because);
    }
  }

  /** {@link #tensor}, with the shape and dtype of {@code model} (named {@code modelName}). */
  static void like(Backend backend, String op, String argument, Tensor t, String modelName, Tensor model) {
    tensor(backend, argument, t);
    shape(op, argument, t, model.rows(), model.cols(), modelName + " " + model.shape());
    dtype(op, argument, t, model.dtype());
  }

  /** {@link #tensor}, F32 [rows, 1] and contiguous: per-row statistics a kernel reads as a plain array. */
  static void rowFloats(Backend backend, String op, String argument, Tensor t, int rows, String because) {
    tensor(backend, argument, t);
    shape(op, argument, t, rows, 1, because);
    dtype(op, argument, t, DType.F32);
    if (!t.isContiguous()) {
      throw new IllegalArgumentException(op + ": " + argument + " must be contiguous, got " + t);
    }
  }

  /** {@link #tensor}, I32 [rows, 1]: token ids, labels or positions, one per row of the activations. */
  static void tokenInts(Backend backend, String op, String argument, Tensor t, int rows, String because) {
    tensor(backend, argument, t);
    shape(op, argument, t, rows, 1, because);
    dtype(op, argument, t, DType.I32);
  }

  static void dtype(String op, String argument, Tensor t, DType expected) {
    if (t.dtype() != expected) {
      throw new IllegalArgumentException(op + ": " + argument + " has dtype " + t.dtype() + ", expected " + expected);
    }
  }

  static void disjoint(String op, String argument, Tensor t, String otherName, Tensor other) {
    if (t.overlaps(other)) {
      throw new IllegalArgumentException(op + ": " + argument + " " + t.shape() + " overlaps " + otherName + " "
          + other.shape() + " in memory");
    }
  }

  static void disjoint(String op, String argument, Tensor t, String[] names, Tensor... others) {
    for (int i = 0; i < others.length; i++) {
      disjoint(op, argument, t, names[i], others[i]);
    }
  }

  static void finite(String argument, float value) {
    if (!Float.isFinite(value)) {
      throw new IllegalArgumentException(argument + ": expected a finite value, got " + value);
    }
  }

  /** The same elements (address, stride, dtype): an elementwise kernel may then run in place. */
  static boolean sameElements(Tensor a, Tensor b) {
    return a.address() == b.address() && a.ld() == b.ld() && a.dtype() == b.dtype();
  }
}
