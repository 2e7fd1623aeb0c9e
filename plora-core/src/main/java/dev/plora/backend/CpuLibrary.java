package dev.plora.backend;

import org.bytedeco.javacpp.annotation.Platform;

/**
 * The JavaCPP configuration that every kernel family's host binding inherits ({@code
 * @Properties(inherit = CpuLibrary.class)}): all of them compile into one JNI library,
 * libjniCpuKernels, linked against libplora_cpu. libplora_env is loaded first so that OpenMP
 * threads wait passively (see native/cpu/env.cpp). Public only so that the runtime binding of
 * its backend's package can inherit it too; holds no code.
 */
@Platform(preload = "plora_env", link = "plora_cpu", library = "jniCpuKernels")
public final class CpuLibrary {
  private CpuLibrary() {}
}
