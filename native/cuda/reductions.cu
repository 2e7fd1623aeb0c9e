// Kernel family reductions on the GPU: sum of squares (in double) and non-finite count.
// CPU reference: native/cpu/reductions.cpp. Scratch and block reductions: reduce.cuh; the row
// walk with its 16-byte packs: vector.cuh.
#include "../common/contracts.h"
#include "plora/reductions.h"
#include "reduce.cuh"
#include "vector.cuh"

using namespace plora;

namespace {

// Each thread sums its elements in a fixed order (its head or tail element, then its packs),
// the block reduces (warp shuffles, then the warps' partials in order) and thread 0 adds the
// block's total to *out with one atomic.
template <class Op>
__global__ void __launch_bounds__(kThreads) reduce_kernel(Op op, int64_t rows, int64_t cols, typename Op::Acc* out) {
  __shared__ typename Op::Acc partial[kWarps + 1];
  typename Op::Acc acc{};
  walk_rows(op, rows, cols, acc);
  const typename Op::Acc total = block_sum(acc, partial);
  if (threadIdx.x == 0 && total != 0) atomicAdd(out, total);
}

// The sum of squares in double.
template <class T>
struct SumSquaresOp {
  using Acc = double;
  struct Regs {
    float v[kPack];
  };
  struct Row {
    const typename T::Bits* x;
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, x); }
    __device__ void element(int64_t j, Acc& acc) const {
      const double v = T::load(x[j]);
      acc += v * v;
    }
    __device__ void load(int64_t j, Regs& r) const { load_pack<T>(x + j, r.v); }
    __device__ void store(int64_t, const Regs& r, Acc& acc) const {
#pragma unroll
      for (int k = 0; k < kPack; ++k) acc += static_cast<double>(r.v[k]) * r.v[k];
    }
  };
  const typename T::Bits* x;
  int64_t ld;
  __device__ Row row(int64_t i) const { return {x + i * ld}; }
};

// The count of infinities and NaNs: an fp32 exponent of all ones.
template <class T>
struct NonfiniteOp {
  using Acc = unsigned long long;
  struct Regs {
    float v[kPack];
  };
  static __device__ __forceinline__ bool nonfinite(float v) { return (float_bits(v) & 0x7f800000u) == 0x7f800000u; }
  struct Row {
    const typename T::Bits* x;
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, x); }
    __device__ void element(int64_t j, Acc& acc) const { acc += nonfinite(T::load(x[j])); }
    __device__ void load(int64_t j, Regs& r) const { load_pack<T>(x + j, r.v); }
    __device__ void store(int64_t, const Regs& r, Acc& acc) const {
#pragma unroll
      for (int k = 0; k < kPack; ++k) acc += nonfinite(r.v[k]);
    }
  };
  const typename T::Bits* x;
  int64_t ld;
  __device__ Row row(int64_t i) const { return {x + i * ld}; }
};

// A matrix whose rows follow each other is walked as one row.
struct Shape {
  int64_t rows, cols;
};
Shape flat(int64_t ld, int64_t rows, int64_t cols) { return ld == cols || rows == 1 ? Shape{1, rows * cols} : Shape{rows, cols}; }

int sum_squares_into(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, double* out, cudaStream_t s) {
  const Shape shape = flat(ld, rows, cols);
  return with_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    const SumSquaresOp<T> op{static_cast<const typename T::Bits*>(x), ld};
    const auto sum_squares_kernel = reduce_kernel<SumSquaresOp<T>>;
    sum_squares_kernel<<<walk_grid(shape.rows, shape.cols, kThreads, kReduceBlocks), kThreads, 0, s>>>(
        op, shape.rows, shape.cols, out);
    return launch_status("sum_squares");
  });
}

}  // namespace

extern "C" {

int plora_cuda_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, double* out,
                           void* scratch, void* stream) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("out", out));
  const int64_t address = reinterpret_cast<int64_t>(x);
  return plora_cuda_sum_squares_many(1, &address, &dtype, &ld, &rows, &cols, out, scratch, stream);
}

// Every tensor's kernel adds into one scratch sum on the stream; the host waits once, at the end.
int plora_cuda_sum_squares_many(int count, const int64_t* x, const int* dtypes, const int64_t* ld, const int64_t* rows,
                                const int64_t* cols, double* out, void* scratch, void* stream) {
  PLORA_TRY(check_sum_squares_many_args(count, x, dtypes, ld, rows, cols, out));
  PLORA_TRY(check_scratch(scratch));
  cudaStream_t s = as_stream(stream);
  Scratch* dev = static_cast<Scratch*>(scratch);
  PLORA_TRY(reset_scratch(dev, s, "sum_squares"));
  for (int t = 0; t < count; ++t) {
    if (rows[t] == 0 || cols[t] == 0) continue;
    PLORA_TRY(sum_squares_into(reinterpret_cast<const void*>(x[t]), dtypes[t], ld[t], rows[t], cols[t], &dev->sum, s));
  }
  Scratch host{};
  PLORA_TRY(read_scratch(dev, &host, s, "sum_squares"));
  *out = host.sum;
  return ok();
}

int plora_cuda_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols,
                               void* device_counter, int64_t* count, void* stream) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("count", count));
  if (device_counter == nullptr)
    return fail(PLORA_ERR_INVALID, "count_nonfinite: null device counter");
  if (reinterpret_cast<uintptr_t>(device_counter) % 8 != 0)
    return fail(PLORA_ERR_INVALID, "count_nonfinite: device counter not 8-byte aligned");
  if (rows == 0 || cols == 0) {
    *count = 0;
    return ok();
  }
  cudaStream_t s = as_stream(stream);
  unsigned long long* counter = static_cast<unsigned long long*>(device_counter);
  cudaError_t e = cudaMemsetAsync(counter, 0, sizeof *counter, s);
  if (e != cudaSuccess) return cuda_fail("count_nonfinite", e);
  const Shape shape = flat(ld, rows, cols);
  PLORA_TRY(with_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    const NonfiniteOp<T> op{static_cast<const typename T::Bits*>(x), ld};
    const auto count_nonfinite_kernel = reduce_kernel<NonfiniteOp<T>>;
    count_nonfinite_kernel<<<walk_grid(shape.rows, shape.cols, kThreads, kReduceBlocks), kThreads, 0, s>>>(
        op, shape.rows, shape.cols, counter);
    return launch_status("count_nonfinite");
  }));
  unsigned long long host = 0;
  e = cudaMemcpyAsync(&host, counter, sizeof host, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return cuda_fail("count_nonfinite", e);
  *count = static_cast<int64_t>(host);
  return ok();
}

}  // extern "C"
