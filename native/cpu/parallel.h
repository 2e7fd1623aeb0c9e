// When a host kernel's parallel region is worth opening. Every `omp parallel` in native/cpu takes
// `if (parallel_worth(work))`, with `work` the call's elements touched (streaming kernels) or its
// multiply-adds (GEMM-like loops: lora, merge, attention), so that a small call runs on the calling
// thread instead of waking, and on a loaded machine waiting for, the other threads; a small but
// heavy call still counts its FLOPs and runs in parallel. The kernels' results do not depend on the
// thread count (dB and dA of lora.cpp, summed per thread, excepted), so neither do they on this.
#ifndef PLORA_CPU_PARALLEL_H
#define PLORA_CPU_PARALLEL_H

#include <cstdint>

namespace plora {

// Chosen with plora_cpu_bench (docs/kernels.md, "Small calls stay on the calling thread"): opening
// a region cost ~3 µs median, ~8 µs p99 on a loaded 2-core machine; at 2^16 the cheapest kernel
// (axpby, ~0.13 ns an element) has ~3x that in serial work to share. The build may override it
// (-DPLORA_PARALLEL_WORK=n: the benchmark's always- and never-parallel builds).
#ifndef PLORA_PARALLEL_WORK
#define PLORA_PARALLEL_WORK (int64_t{1} << 16)
#endif
constexpr int64_t kParallelWork = PLORA_PARALLEL_WORK;

inline bool parallel_worth(int64_t work) { return work > kParallelWork; }

}  // namespace plora

#endif
