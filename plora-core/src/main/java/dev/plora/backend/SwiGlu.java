package dev.plora.backend;

import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "swiglu" ({@code native/include/plora/swiglu.h}): the gate of Llama-family MLPs,
 * {@code h = silu(gate) ⊙ up} (rounded to the model dtype where Hugging Face rounds), and its
 * backward pass.
 */
public final class SwiGlu {
  private SwiGlu() {}

  /** {@code h ← silu(gate) ⊙ up}; h may be gate or up itself. */
  public static void forward(Backend backend, Tensor gate, Tensor up, Tensor h) {
    synchronized (backend) {
      Args.floats(backend, "swiglu", "gate", gate);
      Args.like(backend, "swiglu", "up", up, "gate", gate);
      Args.like(backend, "swiglu", "h", h, "gate", gate);
      if (!Args.sameElements(h, gate) && !Args.sameElements(h, up)) {
        Args.disjoint("swiglu", "h", h, new String[] {"gate", "up"}, gate, up);
      }
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_swiglu(gate.address(), gate.ld(), up.address(), up.ld(), h.address(), h.ld(),
            gate.dtype().code(), gate.rows(), gate.cols(), backend.stream()), "swiglu");
      } else {
        backend.check(Cpu.plora_cpu_swiglu(gate.address(), gate.ld(), up.address(), up.ld(), h.address(), h.ld(),
            gate.dtype().code(), gate.rows(), gate.cols()), "swiglu");
      }
    }
  }

  /**
   * {@code dgate ← dh ⊙ up ⊙ silu'(gate)}, {@code dup ← dh ⊙ silu(gate)}; dgate may be gate itself
   * and dup may be up itself (the gradients then replace the activations they came from).
   */
  public static void backward(Backend backend, Tensor gate, Tensor up, Tensor dh, Tensor dgate, Tensor dup) {
    synchronized (backend) {
      Args.floats(backend, "swigluBackward", "gate", gate);
      Args.like(backend, "swigluBackward", "up", up, "gate", gate);
      Args.like(backend, "swigluBackward", "dh", dh, "gate", gate);
      Args.like(backend, "swigluBackward", "dgate", dgate, "gate", gate);
      Args.like(backend, "swigluBackward", "dup", dup, "gate", gate);
      Args.disjoint("swigluBackward", "dgate", dgate, new String[] {"up", "dh", "dup"}, up, dh, dup);
      Args.disjoint("swigluBackward", "dup", dup, new String[] {"gate", "dh"}, gate, dh);
      if (!Args.sameElements(dgate, gate)) {
        Args.disjoint("swigluBackward", "dgate", dgate, "gate", gate);
      }
      if (!Args.sameElements(dup, up)) {
        Args.disjoint("swigluBackward", "dup", dup, "up", up);
      }
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_swiglu_backward(gate.address(), gate.ld(), up.address(), up.ld(), dh.address(),
            dh.ld(), dgate.address(), dgate.ld(), dup.address(), dup.ld(), gate.dtype().code(), gate.rows(),
            gate.cols(), backend.stream()), "swiglu backward");
      } else {
        backend.check(Cpu.plora_cpu_swiglu_backward(gate.address(), gate.ld(), up.address(), up.ld(), dh.address(),
            dh.ld(), dgate.address(), dgate.ld(), dup.address(), dup.ld(), gate.dtype().code(), gate.rows(),
            gate.cols()), "swiglu backward");
      }
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/swiglu.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_swiglu(@Cast("const void*") long gate, @Cast("int64_t") long ldGate,
        @Cast("const void*") long up, @Cast("int64_t") long ldUp, @Cast("void*") long h, @Cast("int64_t") long ldH,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols);

    static native int plora_cpu_swiglu_backward(@Cast("const void*") long gate, @Cast("int64_t") long ldGate,
        @Cast("const void*") long up, @Cast("int64_t") long ldUp, @Cast("const void*") long dh,
        @Cast("int64_t") long ldDh, @Cast("void*") long dgate, @Cast("int64_t") long ldDgate,
        @Cast("void*") long dup, @Cast("int64_t") long ldDup, int dtype, @Cast("int64_t") long rows,
        @Cast("int64_t") long cols);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/swiglu.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_swiglu(@Cast("const void*") long gate, @Cast("int64_t") long ldGate,
        @Cast("const void*") long up, @Cast("int64_t") long ldUp, @Cast("void*") long h, @Cast("int64_t") long ldH,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("void*") long stream);

    static native int plora_cuda_swiglu_backward(@Cast("const void*") long gate, @Cast("int64_t") long ldGate,
        @Cast("const void*") long up, @Cast("int64_t") long ldUp, @Cast("const void*") long dh,
        @Cast("int64_t") long ldDh, @Cast("void*") long dgate, @Cast("int64_t") long ldDgate,
        @Cast("void*") long dup, @Cast("int64_t") long ldDup, int dtype, @Cast("int64_t") long rows,
        @Cast("int64_t") long cols, @Cast("void*") long stream);
  }
}
