package dev.plora.backend.cuda;

import static org.bytedeco.cuda.global.cublas.CUBLAS_COMPUTE_32F;
import static org.bytedeco.cuda.global.cublas.CUBLAS_GEMM_DEFAULT;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_N;
import static org.bytedeco.cuda.global.cublas.CUBLAS_OP_T;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16BF;
import static org.bytedeco.cuda.global.cudart.CUDA_R_16F;
import static org.bytedeco.cuda.global.cudart.CUDA_R_32F;

import dev.plora.backend.Backend;
import dev.plora.backend.BackendException;
import dev.plora.backend.NativePointers;
import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import java.nio.ByteBuffer;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * GPU backend on device 0: cudart memory, one stream for all work, GEMMs through cuBLAS
 * ({@code cublasGemmEx}, fp32 compute), our CUDA kernels (libplora_cuda, called by the kernel
 * families of {@code dev.plora.backend}). Work is queued on the stream; host transfers ({@link
 * #write}, {@link #read}) synchronise.
 */
public final class CudaBackend extends Backend {
  private final CUstream_st stream = new CUstream_st();
  private final cublasContext blas = new cublasContext();
  private final FloatPointer alpha = new FloatPointer(1); // host scalars for cuBLAS
  private final FloatPointer beta = new FloatPointer(1);
  private final long scratch; // device memory for reductions that return a number to the host
  private long workspace; // grown on demand (the AdamW slot table)
  private long workspaceBytes;

  /** Opens the backend; throws {@link BackendException} with the probe's reason when CUDA is unusable. */
  public CudaBackend() {
    if (!CudaSupport.isUsable()) {
      throw new BackendException("the CUDA backend is unusable here: " + CudaSupport.reason());
    }
    verifyAbi("libplora_cuda");
    cudaCheck(cudart.cudaSetDevice(0), "cudaSetDevice");
    cudaCheck(cudart.cudaStreamCreate(stream), "cudaStreamCreate");
    int status = cublas.cublasCreate_v2(blas);
    if (status != 0) {
      cudart.cudaStreamDestroy(stream);
      throw new BackendException("cublasCreate failed: " + cublas.cublasGetStatusString(status).getString());
    }
    blasCheck(cublas.cublasSetStream_v2(blas, stream), "cublasSetStream");
    scratch = allocateBytes(constant("PLORA_CUDA_SCRATCH_BYTES"));
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
      case I32 -> throw new IllegalArgumentException("gemm: I32 is refused before cuBLAS"); // by Gemm
    };
  }

  @Override
  protected long stream() {
    onDevice();
    return stream.address();
  }

  @Override
  protected long scratch() {
    return scratch;
  }

  @Override
  protected long workspace(long bytes) {
    if (bytes > workspaceBytes) {
      if (workspace != 0) {
        cudart.cudaFree(NativePointers.at(workspace)); // synchronises: no queued kernel still reads it
      }
      workspace = 0;
      workspaceBytes = 0;
      workspace = allocateBytes(bytes);
      workspaceBytes = bytes;
    }
    return workspace;
  }

  @Override
  protected String lastError() {
    return CudaKernels.lastError();
  }

  @Override
  protected long constant(String name) {
    return CudaKernels.plora_cuda_constant(name);
  }

  @Override
  protected void release() {
    cudart.cudaFree(NativePointers.at(scratch));
    if (workspace != 0) {
      cudart.cudaFree(NativePointers.at(workspace));
    }
    cudart.cudaStreamSynchronize(stream);
    cublas.cublasDestroy_v2(blas);
    cudart.cudaStreamDestroy(stream);
    alpha.close();
    beta.close();
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
