package dev.plora.backend.cuda;

import dev.plora.backend.CudaLibrary;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * JavaCPP binding of libplora_cuda's runtime ({@code native/include/plora/cuda.h}): whether it
 * holds compiled kernels, its errors and ABI constants. The kernels are bound by their families
 * in {@code dev.plora.backend}. Loaded only after {@link CudaSupport} found a usable device.
 */
@Properties(inherit = CudaLibrary.class)
@Platform(include = "plora/cuda.h")
final class CudaKernels {
  static final String LOADED_FROM = Loader.load();

  private CudaKernels() {}

  static native int plora_cuda_compiled();

  static native @Cast("const char*") BytePointer plora_cuda_architectures();

  static native @Cast("const char*") BytePointer plora_cuda_last_error();

  static native @Cast("int64_t") long plora_cuda_constant(@Cast("const char*") String name);

  static String lastError() {
    return plora_cuda_last_error().getString();
  }
}
