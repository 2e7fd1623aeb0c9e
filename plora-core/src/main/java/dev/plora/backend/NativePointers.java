package dev.plora.backend;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * JavaCPP pointers at raw addresses, for handing tensor memory to the BLAS presets. For backend
 * implementations only: the public API never exposes a {@link Pointer}.
 */
public final class NativePointers {
  private NativePointers() {}

  /** A non-owning pointer to {@code address}. */
  public static Pointer at(long address) {
    return new At(address);
  }

  /** A non-owning float pointer to {@code address}. */
  public static FloatPointer floatsAt(long address) {
    return new FloatsAt(address);
  }

  private static final class At extends Pointer {
    At(long address) {
      this.address = address;
    }
  }

  private static final class FloatsAt extends FloatPointer {
    FloatsAt(long address) {
      super((Pointer) null);
      this.address = address;
    }
  }
}
