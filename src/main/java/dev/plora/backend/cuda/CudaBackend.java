package dev.plora.backend.cuda;

import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_GEMM_DEFAULT;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16F;
import static org.bytedeco.cuda.global.cudart.CUDA_R_32F;

import dev.plora.backend.AdamwHyper;
import dev.plora.backend.AdamwSlot;
import dev.plora.backend.Backend;
import dev.plora.backend.BackendException;
import dev.plora.backend.Dropout;
import dev.plora.backend.NativePointers;
import dev.plora.backend.Rounding;
import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import java.nio.ByteBuffer;
import java.util.List;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * GPU backend on device 0: cudart memory, one stream for all work, GEMMs through cuBLAS
 * ({@code cublasGemmEx}, fp32 compute), our CUDA kernels (libplora_cuda). Work is queued on the
 * stream; host transfers ({@link #write}, {@link #read}) synchronise.
 */
public final class CudaBackend extends Backend {
  private static final long SCRATCH_BYTES = 256; // PLORA_CUDA_SCRATCH_BYTES
  private final CUstream_st stream = new CUstream_st();
  private final cublasContext blas = new cublasContext();
  private final FloatPointer alpha = new FloatPointer(1); // host scalars for cuBLAS
  private final FloatPointer beta = new FloatPointer(1);
  private final long scratch; // device memory for reductions that return a number to the host
  private long adamwTable; // device copy of the AdamW slot table, grown on demand
  private long adamwTableBytes;

  /** Opens the backend; throws {@link BackendException} with the probe's reason when CUDA is unusable. */
  public CudaBackend() {
    if (!CudaSupport.isUsable()) {
      throw new BackendException("the CUDA backend is unusable here: " + CudaSupport.reason());
    }
    cudaCheck(cudart.cudaSetDevice(0), "cudaSetDevice");
    cudaCheck(cudart.cudaStreamCreate(stream), "cudaStreamCreate");
    int status = cublas.cublasCreate_v2(blas);
    if (status != 0) {
      cudart.cudaStreamDestroy(stream);
      throw new BackendException("cublasCreate failed: " + cublas.cublasGetStatusString(status).getString());
    }
    blasCheck(cublas.cublasSetStream_v2(blas, stream), "cublasSetStream");
    scratch = allocateBytes(SCRATCH_BYTES);
  }

  @Override
  public String name() {
    return "cuda";
  }

  @Override
  public Device device() {
    return Device.CUDA;
  }

  @Override
  public String describe() {
    return "cuda: " + CudaSupport.reason();
  }

  @Override
  public void synchronize() {
    onDevice();
    cudaCheck(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

  /** Device 0 is current per thread in CUDA: make it so on whichever thread calls in. */
  private static void onDevice() {
    cudaCheck(cudart.cudaSetDevice(0), "cudaSetDevice");
  }

  @Override
  protected long allocateBytes(long bytes) {
    onDevice();
    Pointer p = new Pointer();
    int status = cudart.cudaMalloc(p, bytes);
    if (status != cudart.cudaSuccess) {
      cudart.cudaGetLastError(); // clear the error so later launches are not blamed for it
      throw new BackendException("cuda: cannot allocate " + bytes + " bytes: "
          + cudart.cudaGetErrorString(status).getString());
    }
    return p.address();
  }

  @Override
  protected void freeBytes(long address, long bytes) {
    // Memory may still be in use by queued work: cudaFree synchronises the device implicitly.
    onDevice();
    cudart.cudaFree(NativePointers.at(address));
  }

  @Override
  protected void upload(ByteBuffer host, Tensor dst) {
    onDevice();
    long es = dst.dtype().byteSize();
    if (dst.isContiguous()) { // one linear copy: cudaMemcpy2D refuses pitches above 2 GiB
      cudaCheck(cudart.cudaMemcpyAsync(NativePointers.at(dst.address()), new Pointer(host), dst.elementCount() * es,
          cudart.cudaMemcpyHostToDevice, stream), "upload");
      synchronize();
      return;
    }
    cudaCheck(cudart.cudaMemcpy2DAsync(NativePointers.at(dst.address()), dst.ld() * es, new Pointer(host),
        dst.cols() * es, dst.cols() * es, dst.rows(), cudart.cudaMemcpyHostToDevice, stream), "upload");
    synchronize(); // the host buffer may be reclaimed once we return
  }

  @Override
  protected void download(Tensor src, ByteBuffer host) {
    onDevice();
    long es = src.dtype().byteSize();
    if (src.isContiguous()) {
      cudaCheck(cudart.cudaMemcpyAsync(new Pointer(host), NativePointers.at(src.address()), src.elementCount() * es,
          cudart.cudaMemcpyDeviceToHost, stream), "download");
      synchronize();
      return;
    }
    cudaCheck(cudart.cudaMemcpy2DAsync(new Pointer(host), src.cols() * es, NativePointers.at(src.address()),
        src.ld() * es, src.cols() * es, src.rows(), cudart.cudaMemcpyDeviceToHost, stream), "download");
    synchronize();
  }

  @Override
  protected void copyImpl(Tensor src, Tensor dst) {
    onDevice();
    check(CudaKernels.plora_cuda_copy(src.address(), src.dtype().code(), src.ld(), dst.address(), dst.dtype().code(),
        dst.ld(), src.rows(), src.cols(), stream.address()), "copy");
  }

  @Override
  protected void fillImpl(Tensor dst, float value) {
    onDevice();
    check(CudaKernels.plora_cuda_fill(dst.address(), dst.dtype().code(), dst.ld(), dst.rows(), dst.cols(), value,
        stream.address()), "fill");
  }

  /**
   * Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLAS gets b first, with the
   * row-major leading dimensions unchanged.
   */
  @Override
  protected void gemmImpl(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c,
      int m, int n, int k) {
    onDevice();
    this.alpha.put(alpha);
    this.beta.put(beta);
    int status = cublas.cublasGemmEx(blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
        n, m, k, this.alpha, NativePointers.at(b.address()), cudaType(b.dtype()), b.ld(),
        NativePointers.at(a.address()), cudaType(a.dtype()), a.ld(), this.beta,
        NativePointers.at(c.address()), cudaType(c.dtype()), c.ld(), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    blasCheck(status, "cublasGemmEx");
  }

  private static int cudaType(DType dtype) {
    return switch (dtype) {
      case F32 -> CUDA_R_32F;
      case BF16 -> CUDA_R_16BF;
      case F16 -> CUDA_R_16F;
    };
  }

  @Override
  protected void shrinkImpl(Tensor x, Tensor a, float scaling, Dropout dropout, Tensor out) {
    onDevice();
    check(CudaKernels.plora_cuda_shrink(x.address(), x.ld(), a.address(), a.ld(), out.address(), out.ld(),
        x.dtype().code(), x.rows(), x.cols(), a.rows(), scaling, dropout.p(), dropout.seed(), dropout.stream(),
        stream.address()), "shrink");
  }

  @Override
  protected void dropoutMaskImpl(Dropout dropout, Tensor out) {
    onDevice();
    check(CudaKernels.plora_cuda_dropout_mask(out.address(), out.dtype().code(), out.ld(), out.rows(), out.cols(),
        dropout.p(), dropout.seed(), dropout.stream(), stream.address()), "dropout mask");
  }

  @Override
  protected void dyPassImpl(Tensor dy, Tensor b, Tensor ss, float scaling, Tensor ds, Tensor db) {
    onDevice();
    check(CudaKernels.plora_cuda_dy_pass(dy.address(), dy.ld(), b.address(), b.ld(), ss.address(), ss.ld(),
        ds.address(), ds.ld(), db.address(), db.ld(), dy.dtype().code(), dy.rows(), dy.cols(), b.cols(), scaling,
        stream.address()), "dY pass");
  }

  @Override
  protected void daDxImpl(Tensor x, Tensor ds, Tensor a, Dropout dropout, Tensor da, Tensor dx) {
    onDevice();
    check(CudaKernels.plora_cuda_da_dx(x.address(), x.ld(), ds.address(), ds.ld(), a.address(), a.ld(),
        da.address(), da.ld(), dx != null ? dx.address() : 0L, dx != null ? dx.ld() : 0L, x.dtype().code(),
        x.rows(), x.cols(), a.rows(), dropout.p(), dropout.seed(), dropout.stream(), stream.address()),
        "dA/dX update");
  }

  @Override
  protected void axpbyImpl(float alpha, Tensor x, float beta, Tensor y) {
    onDevice();
    check(CudaKernels.plora_cuda_axpby(alpha, x.address(), x.dtype().code(), x.ld(), beta, y.address(),
        y.dtype().code(), y.ld(), x.rows(), x.cols(), stream.address()), "axpby");
  }

  @Override
  protected void addBiasImpl(Tensor y, Tensor bias) {
    onDevice();
    check(CudaKernels.plora_cuda_add_bias(y.address(), y.dtype().code(), y.ld(), y.rows(), y.cols(), bias.address(),
        bias.dtype().code(), stream.address()), "bias add");
  }

  @Override
  protected void randomFillImpl(Tensor out, boolean normal, float a, float b, long seed, long streamId) {
    onDevice();
    check(CudaKernels.plora_cuda_random_fill(out.address(), out.dtype().code(), out.ld(), out.rows(), out.cols(),
        normal ? 1 : 0, a, b, seed, streamId, stream.address()), "random fill");
  }

  @Override
  protected long countNonFiniteImpl(Tensor x) {
    onDevice();
    long[] count = {0};
    check(CudaKernels.plora_cuda_count_nonfinite(x.address(), x.dtype().code(), x.ld(), x.rows(), x.cols(),
        scratch, count, stream.address()), "non-finite count");
    return count[0];
  }

  @Override
  protected void mergeImpl(Tensor w, Tensor b, Tensor a, float c, Rounding rounding, long seed, long streamId,
      float scaleA, float scaleB) {
    onDevice();
    check(CudaKernels.plora_cuda_merge(w.address(), w.dtype().code(), w.ld(), b.address(), b.ld(), a.address(),
        a.ld(), a.dtype().code(), w.rows(), w.cols(), a.rows(), c, rounding.ordinal(), seed, streamId, scaleA, scaleB,
        stream.address()), "merge");
  }

  @Override
  protected void adamwImpl(List<AdamwSlot> slots, DType copyType, AdamwHyper h) {
    onDevice();
    long needed = 9L * 8 * slots.size();
    if (needed > adamwTableBytes) {
      if (adamwTable != 0) {
        cudart.cudaFree(NativePointers.at(adamwTable)); // synchronises: no queued step still reads it
      }
      adamwTable = 0;
      adamwTableBytes = 0;
      adamwTable = allocateBytes(needed);
      adamwTableBytes = needed;
    }
    AdamwTable t = new AdamwTable(slots);
    check(CudaKernels.plora_cuda_adamw(slots.size(), t.params, t.grads, t.m, t.v, t.copies, t.copyLd, t.rows, t.cols,
        t.lrScale, copyType.code(), h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), h.gradScale(),
        h.biasCorrection1(), h.biasCorrection2(), adamwTable, adamwTableBytes, stream.address()), "adamw");
  }

  @Override
  protected double sumSquaresImpl(List<Tensor> xs) {
    onDevice();
    MatrixTable t = new MatrixTable(xs);
    double[] out = {0};
    check(CudaKernels.plora_cuda_sum_squares_many(xs.size(), t.address, t.dtype, t.ld, t.rows, t.cols, out, scratch,
        stream.address()), "sum of squares");
    return out[0];
  }

  @Override
  protected void geluImpl(Tensor x, Tensor y) {
    onDevice();
    check(CudaKernels.plora_cuda_gelu(x.address(), x.ld(), y.address(), y.ld(), x.dtype().code(), x.rows(), x.cols(),
        stream.address()), "gelu");
  }

  @Override
  protected void geluBackwardImpl(Tensor x, Tensor dy, Tensor dx) {
    onDevice();
    check(CudaKernels.plora_cuda_gelu_backward(x.address(), x.ld(), dy.address(), dy.ld(), dx.address(), dx.ld(),
        x.dtype().code(), x.rows(), x.cols(), stream.address()), "gelu backward");
  }

  @Override
  protected double mseImpl(Tensor pred, Tensor target, Tensor dpred) {
    onDevice();
    double[] loss = {0};
    check(CudaKernels.plora_cuda_mse(pred.address(), pred.ld(), target.address(), target.ld(), pred.dtype().code(),
        pred.rows(), pred.cols(), loss, dpred == null ? 0 : dpred.address(), dpred == null ? 0 : dpred.ld(), scratch,
        stream.address()), "mse");
    return loss[0];
  }

  @Override
  protected double softmaxCrossEntropyImpl(Tensor logits, Tensor labels, Tensor dlogits) {
    onDevice();
    double[] loss = {0};
    long[] bad = {0};
    int status = CudaKernels.plora_cuda_softmax_xent(logits.address(), logits.ld(), logits.dtype().code(),
        logits.rows(), logits.cols(), labels.address(), loss, dlogits == null ? 0 : dlogits.address(),
        dlogits == null ? 0 : dlogits.ld(), bad, scratch, stream.address());
    if (bad[0] > 0) {
      throw new IllegalArgumentException("softmaxCrossEntropy: labels: " + bad[0] + " of " + labels.rows()
          + " are not class indices in [0, " + logits.cols() + ")");
    }
    check(status, "softmax cross-entropy");
    return loss[0];
  }

  @Override
  protected void release() {
    cudart.cudaFree(NativePointers.at(scratch));
    if (adamwTable != 0) {
      cudart.cudaFree(NativePointers.at(adamwTable));
    }
    cudart.cudaStreamSynchronize(stream);
    cublas.cublasDestroy_v2(blas);
    cudart.cudaStreamDestroy(stream);
    alpha.close();
    beta.close();
  }

  private void check(int status, String operation) {
    check(status, operation, status == 0 ? "" : CudaKernels.lastError());
  }

  private static void cudaCheck(int status, String operation) {
    if (status != cudart.cudaSuccess) {
      cudart.cudaGetLastError(); // clear it, so that the next launch is not blamed for it
      throw new BackendException("cuda " + operation + " failed: " + cudart.cudaGetErrorString(status).getString());
    }
  }

  private static void blasCheck(int status, String operation) {
    if (status != 0) {
      throw new BackendException(operation + " failed: " + cublas.cublasGetStatusString(status).getString());
    }
  }
}
