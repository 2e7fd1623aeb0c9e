package dev.plora.backend.cpu;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_RUNTIME_OMP;
import static org.bytedeco.dnnl.global.dnnl.dnnl_cpu_isa_avx512_core_bf16;
import static org.bytedeco.dnnl.global.dnnl.dnnl_eltwise_linear;
import static org.bytedeco.dnnl.global.dnnl.dnnl_get_effective_cpu_isa;
import static org.bytedeco.dnnl.global.dnnl.dnnl_version;

import dev.plora.backend.BackendException;
import dev.plora.backend.NativePointers;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.dnnl_version_t;
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.dnnl.matmul;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.post_ops;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.stream;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

/**
 * BF16 GEMMs through oneDNN's matmul primitive: bf16 operands, fp32 accumulation, and c in BF16
 * or F32 written by the primitive itself (BF16 rounded once, to nearest even), so no operand is
 * widened and nothing is allocated per call. alpha is an eltwise-linear post-op and beta a sum
 * post-op, in that order: c ← beta·c + alpha·op(a)·op(b), and with beta = 0 c is never read.
 * Transposes and strided views are the operands' strides.
 *
 * <p>A primitive is built per shape, strides, output dtype, alpha and beta (tens of µs) and kept
 * in a small least-recently-used cache: a training step repeats a few dozen GEMM shapes. Not
 * thread-safe; its backend's lock serialises the calls.
 */
final class OneDnnGemm implements AutoCloseable {
  /** Primitives kept; a Llama step uses about 30 distinct GEMMs (7 projections × forward, dX, dW; head). */
  private static final int CACHED = 64;

  private final engine engine = new engine(org.bytedeco.dnnl.engine.kind.cpu, 0);
  private final stream stream = new stream(engine);
  private final Map<Key, Primitive> primitives = new LinkedHashMap<>(16, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Key, Primitive> eldest) {
      if (size() > CACHED) {
        eldest.getValue().close();
        return true;
      }
      return false;
    }
  };

  /** What {@link #probe} found: null failure when oneDNN runs bf16 GEMMs on this CPU's bf16 units. */
  record Probe(String failure, String description) {
    boolean usable() {
      return failure == null;
    }
  }

  /**
   * Loads oneDNN and asks whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX, as oneDNN
   * sees it, so an OS that does not enable AMX or ONEDNN_MAX_CPU_ISA counts); then names the
   * implementation oneDNN picks for a bf16 GEMM. Never throws: a library that does not load is a
   * failure with its reason.
   */
  static Probe probe() {
    try {
      Loader.load(dnnl.class);
    } catch (Throwable e) { // UnsatisfiedLinkError, ExceptionInInitializerError, NoClassDefFoundError...
      return new Probe("oneDNN did not load: " + e, null);
    }
    dnnl_version_t v = dnnl_version();
    String version = "oneDNN " + v.major() + "." + v.minor() + "." + v.patch()
        + (v.cpu_runtime() == DNNL_RUNTIME_OMP ? " (OpenMP)" : " (runtime " + v.cpu_runtime() + ")");
    int isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16) {
      return new Probe("this CPU has no bf16 arithmetic (AVX512-BF16 or AMX) by " + version
          + String.format(" (ISA mask 0x%x)", isa), null);
    }
    try (OneDnnGemm gemm = new OneDnnGemm()) {
      String impl = gemm.implementation(64, 64, 64);
      if (impl.startsWith("ref")) {
        return new Probe(version + " has only its reference bf16 matmul (" + impl + ") here", null);
      }
      return new Probe(null, version + ", " + impl);
    } catch (RuntimeException e) {
      return new Probe(version + " cannot build a bf16 matmul: " + e.getMessage(), null);
    }
  }

  /** c ← alpha·op(a)·op(b) + beta·c for BF16 a and b; c BF16 or F32. Arguments validated by {@code Gemm}. */
  void gemm(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c, int m, int n,
      int k) {
    Key key = new Key(transA, transB, m, n, k, a.ld(), b.ld(), c.ld(), c.dtype(), alpha, beta);
    Primitive p = primitives.get(key);
    if (p == null) {
      p = build(key);
      primitives.put(key, p);
    }
    p.src.set_data_handle(NativePointers.at(a.address()));
    p.weights.set_data_handle(NativePointers.at(b.address()));
    p.dst.set_data_handle(NativePointers.at(c.address()));
    try {
      p.matmul.execute(stream, p.args);
      stream._wait();
    } catch (RuntimeException e) {
      throw new BackendException("cpu: oneDNN bf16 matmul " + key + " failed: " + e.getMessage());
    }
  }

  /** The implementation oneDNN picks for a plain [m,k]·[k,n] bf16 GEMM into F32. */
  String implementation(int m, int n, int k) {
    try (Primitive p = build(new Key(false, false, m, n, k, k, n, n, DType.F32, 1f, 0f))) {
      return p.implementation;
    }
  }

  private Primitive build(Key key) {
    try (memory.desc src = matrix(key.m, key.k, key.transA, key.lda, memory.data_type.bf16);
        memory.desc weights = matrix(key.k, key.n, key.transB, key.ldb, memory.data_type.bf16);
        memory.desc dst = matrix(key.m, key.n, false, key.ldc,
            key.cType == DType.F32 ? memory.data_type.f32 : memory.data_type.bf16);
        post_ops ops = new post_ops(); primitive_attr attr = new primitive_attr()) {
      if (key.alpha != 1f) {
        ops.append_eltwise(dnnl_eltwise_linear, key.alpha, 0f);
      }
      if (key.beta != 0f) {
        ops.append_sum(key.beta, 0, memory.data_type.undef);
      }
      attr.set_post_ops(ops);
      matmul.primitive_desc pd;
      try {
        pd = new matmul.primitive_desc(engine, src, weights, dst, attr, false);
      } catch (RuntimeException e) {
        throw new BackendException("cpu: oneDNN has no bf16 matmul for " + key + ": " + e.getMessage());
      }
      try (pd) {
        return new Primitive(new matmul(pd), pd.impl_info_str().getString(), new memory(src, engine, (Pointer) null),
            new memory(weights, engine, (Pointer) null), new memory(dst, engine, (Pointer) null));
      }
    }
  }

  /** A rows × cols operand, row-major with leading dimension ld, or (transposed) the transpose of one. */
  private static memory.desc matrix(long rows, long cols, boolean transposed, long ld, memory.data_type type) {
    try (LongPointer dims = new LongPointer(rows, cols);
        LongPointer strides = transposed ? new LongPointer(1, ld) : new LongPointer(ld, 1)) {
      return new memory.desc(dims, type, strides);
    }
  }

  @Override
  public void close() {
    primitives.values().forEach(Primitive::close);
    primitives.clear();
    stream.close();
    engine.close();
  }

  private record Key(boolean transA, boolean transB, int m, int n, int k, long lda, long ldb, long ldc, DType cType,
      float alpha, float beta) {}

  /** A built matmul with its three memory objects, whose data handles each call sets. */
  private static final class Primitive implements AutoCloseable {
    final matmul matmul;
    final String implementation;
    final memory src;
    final memory weights;
    final memory dst;
    final IntMemoryMap args = new IntMemoryMap();

    Primitive(matmul matmul, String implementation, memory src, memory weights, memory dst) {
      this.matmul = matmul;
      this.implementation = implementation;
      this.src = src;
      this.weights = weights;
      this.dst = dst;
      args.put(DNNL_ARG_SRC, src);
      args.put(DNNL_ARG_WEIGHTS, weights);
      args.put(DNNL_ARG_DST, dst);
    }

    @Override
    public void close() {
      args.close();
      src.close();
      weights.close();
      dst.close();
      matmul.close();
    }
  }
}
