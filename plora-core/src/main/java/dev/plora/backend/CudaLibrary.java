package dev.plora.backend;

import org.bytedeco.javacpp.annotation.Platform;

/**
 * The JavaCPP configuration that every kernel family's CUDA binding inherits: all of them compile
 * into one JNI library, libjniCudaKernels, linked against libplora_cuda. It is loaded only when a
 * family first runs on a CUDA backend (class initialisation is lazy), so the CPU backend never
 * needs the CUDA libraries. Public only so that the runtime binding of
 * its backend's package can inherit it too; holds no code.
 */
@Platform(link = "plora_cuda", library = "jniCudaKernels")
public final class CudaLibrary {
  private CudaLibrary() {}
}
