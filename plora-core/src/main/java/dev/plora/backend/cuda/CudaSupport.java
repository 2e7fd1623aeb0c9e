package dev.plora.backend.cuda;

import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.cuda.global.cudart;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bytedeco.javacpp.Loader;

/**
 * Finds out, once per JVM, whether the CUDA backend can run here: the CUDA runtime and driver
 * load, a device exists, libplora_cuda holds compiled kernels and cuBLAS loads. Any failure,
 * including a missing native library, is caught and kept as a readable reason; nothing here
 * lets a CUDA class fail to initialise in a way that affects the CPU backend.
 */
public final class CudaSupport {
  private static volatile Probe probe;

  private CudaSupport() {}

  /** True when a {@link CudaBackend} can be created. */
  public static boolean isUsable() {
    return probe().usable;
  }

  /** Why CUDA is unusable, or a description of the device when it is usable. */
  public static String reason() {
    return probe().message;
  }

  /** Where the CUDA JNI libraries were loaded from ("" when they were not). */
  public static String librariesLoadedFrom() {
    return probe().loadedFrom;
  }

  private static Probe probe() {
    Probe p = probe;
    if (p == null) {
      synchronized (CudaSupport.class) {
        p = probe;
        if (p == null) {
          p = run();
          probe = p;
        }
      }
    }
    return p;
  }

  private static Probe run() {
    String disabled = System.getProperty("plora.cuda.disable");
    if (disabled != null && !disabled.equals("false")) {
      return Probe.unusable("disabled by -Dplora.cuda.disable");
    }
    String step = "loading the CUDA runtime (libcudart, and the driver's libcuda)";
    try {
      String cudartFrom = Loader.load(cudart.class);
      step = "counting CUDA devices";
      int[] count = {0}; // the runtime may leave garbage here on error: trust it only on success
      int status = cudart.cudaGetDeviceCount(count);
      if (status != cudart.cudaSuccess) {
        return Probe.unusable("cudaGetDeviceCount failed: " + cudart.cudaGetErrorString(status).getString());
      }
      if (count[0] <= 0) {
        return Probe.unusable("no CUDA device found");
      }
      step = "loading libplora_cuda";
      String kernelsFrom = CudaKernels.LOADED_FROM;
      if (CudaKernels.plora_cuda_compiled() == 0) {
        return Probe.unusable("libplora_cuda was built without nvcc (the CUDA kernels are a stub)");
      }
      step = "loading cuBLAS (put the CUDA toolkit's lib64 on LD_LIBRARY_PATH)";
      String cublasFrom = Loader.load(cublas.class);
      step = "reading the device properties";
      cudaDeviceProp prop = new cudaDeviceProp();
      status = cudart.cudaGetDeviceProperties(prop, 0);
      if (status != cudart.cudaSuccess) {
        return Probe.unusable("cudaGetDeviceProperties failed: " + cudart.cudaGetErrorString(status).getString());
      }
      String device = prop.name().getString() + " (sm_" + prop.major() + prop.minor() + ", "
          + (prop.totalGlobalMem() >> 20) + " MiB), kernels for sm " + CudaKernels.plora_cuda_architectures().getString();
      return new Probe(true, device, kernelsFrom + ", " + cudartFrom + ", " + cublasFrom);
    } catch (LinkageError | RuntimeException e) {
      return Probe.unusable("failed while " + step + ": " + describe(e));
    }
  }

  /** The useful part of a load failure: which shared library is missing, when that is the cause. */
  private static String describe(Throwable e) {
    String what = e.getMessage() != null ? e.getMessage() : e.getClass().getName();
    if (e.getCause() != null && e.getCause().getMessage() != null) {
      what += " (" + e.getCause().getMessage() + ")";
    }
    Matcher missing = MISSING_LIBRARY.matcher(what);
    if (missing.find()) {
      return missing.group(1) + " cannot be found (no NVIDIA driver, or the CUDA libraries are not on "
          + "LD_LIBRARY_PATH)";
    }
    return e.getClass().getSimpleName() + ": " + what;
  }

  private static final Pattern MISSING_LIBRARY =
      Pattern.compile("([\\w.+-]+\\.so[.\\d]*): cannot open shared object file");

  private record Probe(boolean usable, String message, String loadedFrom) {
    static Probe unusable(String why) {
      return new Probe(false, why, "");
    }
  }
}
