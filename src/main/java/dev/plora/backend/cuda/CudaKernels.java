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

  static native int plora_cuda_dy_pass(@Cast("const void*") long dy, @Cast("int64_t") long ldDy,
      @Cast("const void*") long b, @Cast("int64_t") long ldB, @Cast("const void*") long ss, @Cast("int64_t") long ldSs,
      @Cast("void*") long ds, @Cast("int64_t") long ldDs, @Cast("float*") long db, @Cast("int64_t") long ldDb,
      int dtype, @Cast("int64_t") long m, @Cast("int64_t") long n, @Cast("int64_t") long r, float scaling,
      @Cast("void*") long stream);

  static native int plora_cuda_da_dx(@Cast("const void*") long x, @Cast("int64_t") long ldX,
      @Cast("const void*") long ds, @Cast("int64_t") long ldDs, @Cast("const void*") long a, @Cast("int64_t") long ldA,
      @Cast("float*") long da, @Cast("int64_t") long ldDa, @Cast("void*") long dx, @Cast("int64_t") long ldDx,
      int dtype, @Cast("int64_t") long m, @Cast("int64_t") long k, @Cast("int64_t") long r, float p,
      @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId, @Cast("void*") long stream);

  static native int plora_cuda_axpby(float alpha, @Cast("const void*") long x, int xDtype, @Cast("int64_t") long ldX,
      float beta, @Cast("void*") long y, int yDtype, @Cast("int64_t") long ldY, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, @Cast("void*") long stream);

  static native int plora_cuda_add_bias(@Cast("void*") long y, int dtype, @Cast("int64_t") long ld,
      @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("const void*") long bias, int biasDtype,
      @Cast("void*") long stream);

  static native int plora_cuda_random_fill(@Cast("void*") long out, int dtype, @Cast("int64_t") long ld,
      @Cast("int64_t") long rows, @Cast("int64_t") long cols, int distribution, float a, float b,
      @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId, @Cast("void*") long stream);

  static native int plora_cuda_count_nonfinite(@Cast("const void*") long x, int dtype, @Cast("int64_t") long ld,
      @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("void*") long deviceCounter,
      @Cast("int64_t*") long[] count, @Cast("void*") long stream);

  static native int plora_cuda_merge(@Cast("void*") long w, int wDtype, @Cast("int64_t") long ldW,
      @Cast("void*") long b, @Cast("int64_t") long ldB, @Cast("void*") long a, @Cast("int64_t") long ldA, int abDtype,
      @Cast("int64_t") long n, @Cast("int64_t") long k, @Cast("int64_t") long r, float c, int rounding,
      @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId, float scaleA, float scaleB,
      @Cast("void*") long stream);

  static native int plora_cuda_adamw(int count, @Cast("const int64_t*") long[] params,
      @Cast("const int64_t*") long[] grads, @Cast("const int64_t*") long[] m, @Cast("const int64_t*") long[] v,
      @Cast("const int64_t*") long[] copies, @Cast("const int64_t*") long[] copyLd, @Cast("const int64_t*") long[] rows,
      @Cast("const int64_t*") long[] cols, @Cast("const float*") float[] lrScale, int copyDtype, float lr, float beta1,
      float beta2, float eps, float weightDecay, float gradScale, float biasCorrection1, float biasCorrection2,
      @Cast("void*") long table, @Cast("int64_t") long tableBytes, @Cast("void*") long stream);

  static native int plora_cuda_sum_squares_many(int count, @Cast("const int64_t*") long[] x,
      @Cast("const int*") int[] dtypes, @Cast("const int64_t*") long[] ld, @Cast("const int64_t*") long[] rows,
      @Cast("const int64_t*") long[] cols, double[] out, @Cast("void*") long scratch, @Cast("void*") long stream);

  static native int plora_cuda_gelu(@Cast("const void*") long x, @Cast("int64_t") long ldX, @Cast("void*") long y,
      @Cast("int64_t") long ldY, int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols,
      @Cast("void*") long stream);

  static native int plora_cuda_gelu_backward(@Cast("const void*") long x, @Cast("int64_t") long ldX,
      @Cast("const void*") long dy, @Cast("int64_t") long ldDy, @Cast("void*") long dx, @Cast("int64_t") long ldDx,
      int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("void*") long stream);

  static native int plora_cuda_mse(@Cast("const void*") long pred, @Cast("int64_t") long ldPred,
      @Cast("const void*") long target, @Cast("int64_t") long ldTarget, int dtype, @Cast("int64_t") long rows,
      @Cast("int64_t") long cols, double[] loss, @Cast("void*") long dpred, @Cast("int64_t") long ldDpred,
      @Cast("void*") long scratch, @Cast("void*") long stream);

  static native int plora_cuda_softmax_xent(@Cast("const void*") long logits, @Cast("int64_t") long ldLogits,
      int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("const float*") long labels,
      double[] loss, @Cast("void*") long dlogits, @Cast("int64_t") long ldDlogits, @Cast("int64_t*") long[] badLabels,
      @Cast("void*") long scratch, @Cast("void*") long stream);

  static String lastError() {
    return plora_cuda_last_error().getString();
  }
}
