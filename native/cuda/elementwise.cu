// Kernel family elementwise on the GPU: copies with dtype conversion, fills, axpby, bias add.
// Each is a row walk (vector.cuh): dtypes as template parameters, 16-byte packs with a scalar
// head and tail, rows along the grid's y dimension; a matrix whose rows are contiguous is walked
// as one row.
#include "../common/contracts.h"
#include "plora/elementwise.h"
#include "vector.cuh"

using namespace plora;

namespace {

constexpr int kThreads = 256;

// Rows that follow each other in memory (ld == cols for every operand, or one row) are one row.
struct Shape {
  int64_t rows, cols;
};
Shape flat(int64_t rows, int64_t cols, bool contiguous) {
  return contiguous || rows == 1 ? Shape{1, rows * cols} : Shape{rows, cols};
}

template <class S, class D>
struct CopyOp {
  using Acc = NoAcc;
  struct Regs {
    float v[kPack];
  };
  struct Row {
    const typename S::Bits* s;
    typename D::Bits* d;
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, s, d); }
    __device__ void element(int64_t j, Acc&) const { d[j] = D::store(S::load(s[j])); }
    __device__ void load(int64_t j, Regs& r) const { load_pack<S>(s + j, r.v); }
    __device__ void store(int64_t j, const Regs& r, Acc&) const { store_pack<D>(d + j, r.v); }
  };
  const typename S::Bits* src;
  int64_t ld_src;
  typename D::Bits* dst;
  int64_t ld_dst;
  __device__ Row row(int64_t i) const { return {src + i * ld_src, dst + i * ld_dst}; }
};

template <class D>
struct FillOp {
  using Acc = NoAcc;
  struct Regs {};
  struct Row {
    typename D::Bits* d;
    typename D::Bits bits;
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, d); }
    __device__ void element(int64_t j, Acc&) const { d[j] = bits; }
    __device__ void load(int64_t, Regs&) const {}
    __device__ void store(int64_t j, const Regs&, Acc&) const {
      typename D::Bits b[kPack];
#pragma unroll
      for (int k = 0; k < kPack; ++k) b[k] = bits;
      store_bits(d + j, b);
    }
  };
  typename D::Bits* dst;
  int64_t ld;
  float value;
  __device__ Row row(int64_t i) const { return {dst + i * ld, D::store(value)}; }
};

// y = alpha x + beta y; y is not read when beta is 0. __fmul_rn / __fadd_rn keep nvcc from
// contracting into an FMA: the correctly rounded multiply-then-add, within one rounding of the
// host's (which may contract).
template <class X, class Y>
struct AxpbyOp {
  using Acc = NoAcc;
  struct Regs {
    float x[kPack], y[kPack];
  };
  struct Row {
    const typename X::Bits* x;
    typename Y::Bits* y;
    float alpha, beta;
    __device__ float axpby(float xv, float yv) const {
      const float v = __fmul_rn(alpha, xv);
      return beta != 0.0f ? __fadd_rn(v, __fmul_rn(beta, yv)) : v;
    }
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, x, y); }
    __device__ void element(int64_t j, Acc&) const {
      y[j] = Y::store(axpby(X::load(x[j]), beta != 0.0f ? Y::load(y[j]) : 0.0f));
    }
    __device__ void load(int64_t j, Regs& r) const {
      load_pack<X>(x + j, r.x);
      if (beta != 0.0f) load_pack<Y>(y + j, r.y);
    }
    __device__ void store(int64_t j, const Regs& r, Acc&) const {
      float v[kPack];
#pragma unroll
      for (int k = 0; k < kPack; ++k) v[k] = axpby(r.x[k], beta != 0.0f ? r.y[k] : 0.0f);
      store_pack<Y>(y + j, v);
    }
  };
  const typename X::Bits* x;
  int64_t ld_x;
  typename Y::Bits* y;
  int64_t ld_y;
  float alpha, beta;
  __device__ Row row(int64_t i) const { return {x + i * ld_x, y + i * ld_y, alpha, beta}; }
};

template <class Y, class B>
struct AddBiasOp {
  using Acc = NoAcc;
  struct Regs {
    float y[kPack], b[kPack];
  };
  struct Row {
    typename Y::Bits* y;
    const typename B::Bits* b;
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, y, b); }
    __device__ void element(int64_t j, Acc&) const { y[j] = Y::store(Y::load(y[j]) + B::load(b[j])); }
    __device__ void load(int64_t j, Regs& r) const {
      load_pack<Y>(y + j, r.y);
      load_pack<B>(b + j, r.b);
    }
    __device__ void store(int64_t j, const Regs& r, Acc&) const {
      float v[kPack];
#pragma unroll
      for (int k = 0; k < kPack; ++k) v[k] = r.y[k] + r.b[k];
      store_pack<Y>(y + j, v);
    }
  };
  typename Y::Bits* y;
  int64_t ld;
  const typename B::Bits* bias;
  __device__ Row row(int64_t i) const { return {y + i * ld, bias}; }
};

template <class T>
typename T::Bits* bits(void* p) {
  return static_cast<typename T::Bits*>(p);
}
template <class T>
const typename T::Bits* bits(const void* p) {
  return static_cast<const typename T::Bits*>(p);
}

}  // namespace

extern "C" {

int plora_cuda_copy(const void* src, int src_dtype, int64_t ld_src, void* dst, int dst_dtype,
                    int64_t ld_dst, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_copy_args(src, src_dtype, ld_src, dst, dst_dtype, ld_dst, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  if (src_dtype == dst_dtype) {
    const size_t size = dtype_size(src_dtype);
    // contiguous rows are one linear copy: cudaMemcpy2D refuses pitches above 2 GiB
    const bool contiguous = rows == 1 || (ld_src == cols && ld_dst == cols);
    cudaError_t e = contiguous
        ? cudaMemcpyAsync(dst, src, rows * cols * size, cudaMemcpyDeviceToDevice, as_stream(stream))
        : cudaMemcpy2DAsync(dst, ld_dst * size, src, ld_src * size, cols * size, rows, cudaMemcpyDeviceToDevice,
                            as_stream(stream));
    if (e != cudaSuccess) return cuda_fail("copy", e);
    return ok();
  }
  const Shape shape = flat(rows, cols, ld_src == cols && ld_dst == cols);
  return with_float_dtype(src_dtype, [&](auto s) {
    return with_float_dtype(dst_dtype, [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      const CopyOp<S, D> op{bits<S>(src), ld_src, bits<D>(dst), ld_dst};
      const auto copy_kernel = walk_kernel<CopyOp<S, D>>;
      copy_kernel<<<walk_grid(shape.rows, shape.cols, kThreads), kThreads, 0, as_stream(stream)>>>(op, shape.rows,
                                                                                                    shape.cols);
      return launch_status("copy");
    });
  });
}

int plora_cuda_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols, float value,
                    void* stream) {
  PLORA_TRY(check_fill_args(dst, dtype, ld, rows, cols, value));
  if (rows == 0 || cols == 0) return ok();
  const Shape shape = flat(rows, cols, ld == cols);
  return with_storable_dtype(dtype, [&](auto d) {
    using D = decltype(d);
    const FillOp<D> op{bits<D>(dst), ld, value};
    const auto fill_kernel = walk_kernel<FillOp<D>>;
    fill_kernel<<<walk_grid(shape.rows, shape.cols, kThreads), kThreads, 0, as_stream(stream)>>>(op, shape.rows,
                                                                                                shape.cols);
    return launch_status("fill");
  });
}

int plora_cuda_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta, void* y,
                     int y_dtype, int64_t ld_y, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_axpby_args(x, x_dtype, ld_x, y, y_dtype, ld_y, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  const Shape shape = flat(rows, cols, ld_x == cols && ld_y == cols);
  return with_float_dtype(x_dtype, [&](auto xt) {
    return with_float_dtype(y_dtype, [&](auto yt) {
      using X = decltype(xt);
      using Y = decltype(yt);
      const AxpbyOp<X, Y> op{bits<X>(x), ld_x, bits<Y>(y), ld_y, alpha, beta};
      const auto axpby_kernel = walk_kernel<AxpbyOp<X, Y>>;
      axpby_kernel<<<walk_grid(shape.rows, shape.cols, kThreads), kThreads, 0, as_stream(stream)>>>(op, shape.rows,
                                                                                                     shape.cols);
      return launch_status("axpby");
    });
  });
}

int plora_cuda_add_bias(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols,
                        const void* bias, int bias_dtype, void* stream) {
  PLORA_TRY(check_add_bias_args(y, dtype, ld, rows, cols, bias, bias_dtype));
  if (rows == 0 || cols == 0) return ok();
  return with_float_dtype(dtype, [&](auto yt) {
    return with_float_dtype(bias_dtype, [&](auto bt) {
      using Y = decltype(yt);
      using B = decltype(bt);
      const AddBiasOp<Y, B> op{bits<Y>(y), ld, bits<B>(bias)};
      const auto add_bias_kernel = walk_kernel<AddBiasOp<Y, B>>;
      add_bias_kernel<<<walk_grid(rows, cols, kThreads), kThreads, 0, as_stream(stream)>>>(op, rows, cols);
      return launch_status("add_bias");
    });
  });
}

}  // extern "C"
