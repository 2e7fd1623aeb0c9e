package dev.plora.backend.cuda;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of libplora_cuda ({@code native/include/plora/cuda.h}). Pointers and the
 * stream travel as raw addresses. Loaded only after {@link CudaSupport} found a usable device.
 */
@Platform(include = "plora/cuda.h", link = "plora_cuda")
final class CudaKernels {
  static final String LOADED_FROM = Loader.load();

  private CudaKernels() {}

  static native int plora_cuda_compiled();

  static native @Cast("const char*") BytePointer plora_cuda_architectures();

  static native @Cast("const char*") BytePointer plora_cuda_last_error();

  static native int plora_cuda_copy(@Cast("const void*") long src, int srcDtype, @Cast("int64_t") long ldSrc,
      @Cast("void*") long dst, int dstDtype, @Cast("int64_t") long ldDst, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("void*") long stream);

  static native int plora_cuda_fill(@Cast("void*") long dst, int dtype, @Cast("int64_t") long ld,
      @Cast("int64_t") long rows, @Cast("int64_t") long cols, float value, @Cast("void*") long stream);

  static native int plora_cuda_dropout_mask(@Cast("void*") long out, int dtype, @Cast("int64_t") long ld,
      @Cast("int64_t") long rows, @Cast("int64_t") long cols, float p, @Cast("uint64_t") long seed,
      @Cast("uint64_t") long streamId, @Cast("void*") long stream);

  static native int plora_cuda_shrink(@Cast("const void*") long x, @Cast("int64_t") long ldX,
      @Cast("const void*") long a, @Cast("int64_t") long ldA, @Cast("void*") long out, @Cast("int64_t") long ldOut,
      int dtype, @Cast("int64_t") long m, @Cast("int64_t") long k, @Cast("int64_t") long r, float scaling, float p,
      @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId, @Cast("void*") long stream);

  static String lastError() {
    return plora_cuda_last_error().getString();
  }
}
