package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.util.function.BiConsumer;

/**
 * The host memory through which values travel between Java and a backend: one direct buffer,
 * allocated once per backend and reused, so copies allocate nothing and host memory stays
 * bounded whatever the tensor's size. Tensors larger than the buffer go in pieces of whole rows
 * (or of one row, for rows longer than the buffer).
 *
 * <p>The buffer is kept reachable until each native copy has returned: the native side sees only
 * its address, and a collected buffer would be freed under the copy.
 */
final class HostStaging {
  /** Bytes of the staging buffer: large enough that per-piece overhead is negligible. */
  static final int BYTES = Integer.getInteger("plora.stagingBytes", 4 << 20);

  private final ByteBuffer buffer;

  HostStaging(int bytes) {
    if (bytes < 4) {
      throw new IllegalArgumentException("staging bytes: expected >= 4, got " + bytes);
    }
    buffer = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
  }

  /** Copies {@code dst.elementCount()} values from {@code values} (row-major) into {@code dst}. */
  void write(Tensor dst, FloatBuffer values, BiConsumer<ByteBuffer, Tensor> upload) {
    FloatBuffer in = values.duplicate();
    forEachPiece(dst, piece -> {
      int n = (int) piece.elementCount();
      ByteBuffer host = buffer.clear().limit(n * piece.dtype().byteSize());
      switch (piece.dtype()) {
        case F32 -> host.asFloatBuffer().put(in.slice(in.position(), n));
        case BF16 -> {
          ShortBuffer out = host.asShortBuffer();
          for (int i = 0, p = in.position(); i < n; i++) {
            out.put(i, DType.floatToBf16(in.get(p + i)));
          }
        }
        case F16 -> {
          ShortBuffer out = host.asShortBuffer();
          for (int i = 0, p = in.position(); i < n; i++) {
            out.put(i, DType.floatToF16(in.get(p + i)));
          }
        }
        case I32 -> throw new IllegalStateException("I32 values travel as ints"); // refused by Backend
      }
      in.position(in.position() + n);
      send(host, piece, upload);
    });
  }

  /** Appends {@code src}'s values as fp32, row-major, to {@code values}. */
  void read(Tensor src, FloatBuffer values, BiConsumer<Tensor, ByteBuffer> download) {
    forEachPiece(src, piece -> {
      int n = (int) piece.elementCount();
      ByteBuffer host = buffer.clear().limit(n * piece.dtype().byteSize());
      receive(piece, host, download);
      switch (piece.dtype()) {
        case F32 -> values.put(host.asFloatBuffer());
        case BF16 -> {
          ShortBuffer bits = host.asShortBuffer();
          for (int i = 0; i < n; i++) {
            values.put(DType.bf16ToFloat(bits.get(i)));
          }
        }
        case F16 -> {
          ShortBuffer bits = host.asShortBuffer();
          for (int i = 0; i < n; i++) {
            values.put(DType.f16ToFloat(bits.get(i)));
          }
        }
        case I32 -> throw new IllegalStateException("I32 values travel as ints"); // refused by Backend
      }
    });
  }

  /** Copies {@code dst.elementCount()} ints from {@code values} (row-major) into the I32 {@code dst}. */
  void write(Tensor dst, IntBuffer values, BiConsumer<ByteBuffer, Tensor> upload) {
    IntBuffer in = values.duplicate();
    forEachPiece(dst, piece -> {
      int n = (int) piece.elementCount();
      ByteBuffer host = buffer.clear().limit(n * Integer.BYTES);
      host.asIntBuffer().put(in.slice(in.position(), n));
      in.position(in.position() + n);
      send(host, piece, upload);
    });
  }

  /** Appends the I32 {@code src}'s values, row-major, to {@code values}. */
  void read(Tensor src, IntBuffer values, BiConsumer<Tensor, ByteBuffer> download) {
    forEachPiece(src, piece -> {
      int n = (int) piece.elementCount();
      ByteBuffer host = buffer.clear().limit(n * Integer.BYTES);
      receive(piece, host, download);
      values.put(host.asIntBuffer());
    });
  }

  /** One native upload of a piece; the buffer stays reachable until it has returned. */
  private void send(ByteBuffer host, Tensor piece, BiConsumer<ByteBuffer, Tensor> upload) {
    try {
      upload.accept(host, piece);
    } finally {
      Reference.reachabilityFence(buffer);
    }
  }

  /** One native download of a piece; the buffer stays reachable until it has returned. */
  private void receive(Tensor piece, ByteBuffer host, BiConsumer<Tensor, ByteBuffer> download) {
    try {
      download.accept(piece, host);
    } finally {
      Reference.reachabilityFence(buffer);
    }
  }

  /** {@code t} in row-major pieces that each fit the buffer: blocks of rows, or parts of one row. */
  private void forEachPiece(Tensor t, java.util.function.Consumer<Tensor> action) {
    int capacity = buffer.capacity() / t.dtype().byteSize();
    if (t.cols() <= capacity) {
      int rowsPerPiece = capacity / t.cols();
      for (int r = 0; r < t.rows(); r += rowsPerPiece) {
        action.accept(t.rowsView(r, Math.min(rowsPerPiece, t.rows() - r)));
      }
      return;
    }
    for (int r = 0; r < t.rows(); r++) {
      for (int c = 0; c < t.cols(); c += capacity) {
        action.accept(t.view(r, c, 1, Math.min(capacity, t.cols() - c)));
      }
    }
  }
}
