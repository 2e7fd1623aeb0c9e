// Kernel family reductions on the GPU: sum of squares (in double, the same bits on every run) and
// non-finite count.
// CPU reference: native/cpu/reductions.cpp. Scratch and block reductions: reduce.cuh; the row
// walk with its 16-byte packs: vector.cuh.
#include "../common/contracts.h"
#include "plora/reductions.h"
#include "reduce.cuh"
#include "vector.cuh"

using namespace plora;

namespace {

// Each thread sums its elements in a fixed order (its head or tail element, then its packs), the
// block reduces (warp shuffles, then the warps' partials in order). A sum in double goes to the
// block's own slot of parts (sum_in_order adds the slots in order); a count, exact in any order,
// is added to *out with one atomic.
template <class Op>
__global__ void __launch_bounds__(kThreads) block_sum_kernel(Op op, int64_t rows, int64_t cols, double* parts) {
  double acc = 0.0;
  walk_rows(op, rows, cols, acc);
  store_block_sum(acc, parts);
}

template <class Op>
__global__ void __launch_bounds__(kThreads) count_kernel(Op op, int64_t rows, int64_t cols, unsigned long long* out) {
  __shared__ unsigned long long partial[kWarps + 1];
  unsigned long long acc = 0;
  walk_rows(op, rows, cols, acc);
  const unsigned long long total = block_sum(acc, partial);
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

dim3 reduce_grid(Shape shape) { return walk_grid(shape.rows, shape.cols, kThreads, kReduceBlocks); }
int64_t block_count(dim3 grid) { return static_cast<int64_t>(grid.x) * grid.y; }

// Writes one partial per block of the tensor's grid (reduce_grid, block_count of them) to parts.
int sum_squares_parts(const void* x, int dtype, int64_t ld, Shape shape, double* parts, cudaStream_t s) {
  return with_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    const SumSquaresOp<T> op{static_cast<const typename T::Bits*>(x), ld};
    const auto sum_squares_kernel = block_sum_kernel<SumSquaresOp<T>>;
    sum_squares_kernel<<<reduce_grid(shape), kThreads, 0, s>>>(op, shape.rows, shape.cols, parts);
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

// Every tensor's kernel writes its blocks' partials to its own slots of one stream-ordered buffer,
// one block adds them all in order into the scratch sum; the host waits once, at the end.
int plora_cuda_sum_squares_many(int count, const int64_t* x, const int* dtypes, const int64_t* ld, const int64_t* rows,
                                const int64_t* cols, double* out, void* scratch, void* stream) {
  PLORA_TRY(check_sum_squares_many_args(count, x, dtypes, ld, rows, cols, out));
  PLORA_TRY(check_scratch(scratch));
  cudaStream_t s = as_stream(stream);
  int64_t total_parts = 0;
  for (int t = 0; t < count; ++t)
    if (rows[t] != 0 && cols[t] != 0) total_parts += block_count(reduce_grid(flat(ld[t], rows[t], cols[t])));
  StreamScratch<double> parts(s);
  PLORA_TRY(parts.allocate(total_parts, "sum_squares (scratch)"));
  int64_t first = 0;
  for (int t = 0; t < count; ++t) {
    if (rows[t] == 0 || cols[t] == 0) continue;
    const Shape shape = flat(ld[t], rows[t], cols[t]);
    PLORA_TRY(sum_squares_parts(reinterpret_cast<const void*>(x[t]), dtypes[t], ld[t], shape, parts.ptr + first, s));
    first += block_count(reduce_grid(shape));
  }
  Scratch* dev = static_cast<Scratch*>(scratch);
  const auto sum_squares_total = sum_in_order<double>;
  sum_squares_total<<<1, kThreads, 0, s>>>(parts.ptr, total_parts, nullptr, &dev->sum);
  PLORA_TRY(launch_status("sum_squares (total)"));
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
    const auto count_nonfinite_kernel = count_kernel<NonfiniteOp<T>>;
    count_nonfinite_kernel<<<reduce_grid(shape), kThreads, 0, s>>>(
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
