package dev.plora.backend.cpu;

import dev.plora.backend.CpuLibrary;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * JavaCPP binding of libplora_cpu's runtime ({@code native/include/plora/cpu.h}): errors, threads,
 * memory, ABI constants and the host copies of uploads and downloads. The kernels are bound by
 * their families in {@code dev.plora.backend}. Pointers travel as raw addresses.
 */
@Properties(inherit = CpuLibrary.class)
@Platform(include = "plora/cpu.h")
final class CpuKernels {
  /** Path of the loaded JNI library. */
  static final String LOADED_FROM = Loader.load();

  private CpuKernels() {}

  static native @Cast("const char*") BytePointer plora_cpu_last_error();

  static native int plora_cpu_num_threads();

  static native int plora_cpu_blas_threads();

  static native @Cast("intptr_t") long plora_cpu_alloc(@Cast("int64_t") long bytes);

  static native void plora_cpu_free(@Cast("void*") long ptr);

  static native int plora_cpu_supported();

  /** Host copies of {@link CpuBackend#upload} and download; the kernel families bind their own calls. */
  static native int plora_cpu_copy(@Cast("const void*") long src, int srcDtype, @Cast("int64_t") long ldSrc,
      @Cast("void*") long dst, int dstDtype, @Cast("int64_t") long ldDst, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols);

  static native @Cast("int64_t") long plora_cpu_constant(@Cast("const char*") String name);

  static String lastError() {
    return plora_cpu_last_error().getString();
  }
}
