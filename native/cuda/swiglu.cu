// SwiGLU on the GPU (plora/swiglu.h). CPU reference: native/cpu/swiglu.cpp (same formulas).
// Row walks (vector.cuh): the dtype a template parameter, 16-byte packs with a scalar head and
// tail, rows along the grid's y dimension, no division.
#include <initializer_list>

#include "../common/contracts.h"
#include "plora/swiglu.h"
#include "vector.cuh"

using namespace plora;

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

// h = round(silu(gate)) * up, silu rounded to the dtype as Hugging Face's act_fn(gate) * up does.
template <class T>
struct SwigluOp {
  using Acc = NoAcc;
  struct Regs {
    float g[kPack], u[kPack];
  };
  static __device__ __forceinline__ float h_of(float g, float u) { return T::load(T::store(g * sigmoid(g))) * u; }
  struct Row {
    const typename T::Bits *gate, *up;
    typename T::Bits* h;
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, gate, up, h); }
    __device__ void element(int64_t j, Acc&) const { h[j] = T::store(h_of(T::load(gate[j]), T::load(up[j]))); }
    __device__ void load(int64_t j, Regs& r) const {
      load_pack<T>(gate + j, r.g);
      load_pack<T>(up + j, r.u);
    }
    __device__ void store(int64_t j, const Regs& r, Acc&) const {
      float v[kPack];
#pragma unroll
      for (int k = 0; k < kPack; ++k) v[k] = h_of(r.g[k], r.u[k]);
      store_pack<T>(h + j, v);
    }
  };
  const typename T::Bits *gate, *up;
  typename T::Bits* h;
  int64_t ld_gate, ld_up, ld_h;
  __device__ Row row(int64_t i) const { return {gate + i * ld_gate, up + i * ld_up, h + i * ld_h}; }
};

// dgate = dh * up * s * (1 + g * (1 - s)), dup = dh * g * s with s = sigmoid(g). Every input of a
// pack is read before its outputs are written: dgate may be gate, dup may be up.
template <class T>
struct SwigluBackwardOp {
  using Acc = NoAcc;
  struct Regs {
    float g[kPack], u[kPack], d[kPack];
  };
  static __device__ __forceinline__ void grads(float g, float u, float d, float& dg, float& du) {
    const float s = sigmoid(g);
    dg = d * u * (s * (1.0f + g * (1.0f - s)));
    du = d * (g * s);
  }
  struct Row {
    const typename T::Bits *gate, *up, *dh;
    typename T::Bits *dgate, *dup;
    __device__ int64_t head(int64_t cols) const { return pack_head<kPack>(cols, gate, up, dh, dgate, dup); }
    __device__ void element(int64_t j, Acc&) const {
      float dg, du;
      grads(T::load(gate[j]), T::load(up[j]), T::load(dh[j]), dg, du);
      dgate[j] = T::store(dg);
      dup[j] = T::store(du);
    }
    __device__ void load(int64_t j, Regs& r) const {
      load_pack<T>(gate + j, r.g);
      load_pack<T>(up + j, r.u);
      load_pack<T>(dh + j, r.d);
    }
    __device__ void store(int64_t j, const Regs& r, Acc&) const {
      float dg[kPack], du[kPack];
#pragma unroll
      for (int k = 0; k < kPack; ++k) grads(r.g[k], r.u[k], r.d[k], dg[k], du[k]);
      store_pack<T>(dgate + j, dg);
      store_pack<T>(dup + j, du);
    }
  };
  const typename T::Bits *gate, *up, *dh;
  typename T::Bits *dgate, *dup;
  int64_t ld_gate, ld_up, ld_dh, ld_dgate, ld_dup;
  __device__ Row row(int64_t i) const {
    return {gate + i * ld_gate, up + i * ld_up, dh + i * ld_dh, dgate + i * ld_dgate, dup + i * ld_dup};
  }
};

// Rows that follow each other in every operand are walked as one row.
bool flat(int64_t cols, std::initializer_list<int64_t> lds) {
  for (int64_t ld : lds)
    if (ld != cols) return false;
  return true;
}

template <class T>
const typename T::Bits* in(const void* p) {
  return static_cast<const typename T::Bits*>(p);
}
template <class T>
typename T::Bits* out(void* p) {
  return static_cast<typename T::Bits*>(p);
}

}  // namespace

extern "C" {

int plora_cuda_swiglu(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, void* h, int64_t ld_h,
                      int dtype, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_swiglu_args(gate, ld_gate, up, ld_up, "h", h, ld_h, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  if (rows == 1 || flat(cols, {ld_gate, ld_up, ld_h})) cols *= rows, rows = 1;
  return with_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    const SwigluOp<T> op{in<T>(gate), in<T>(up), out<T>(h), ld_gate, ld_up, ld_h};
    const auto swiglu_kernel = walk_kernel<SwigluOp<T>>;
    swiglu_kernel<<<walk_grid(rows, cols, kThreads), kThreads, 0, as_stream(stream)>>>(op, rows, cols);
    return launch_status("swiglu");
  });
}

int plora_cuda_swiglu_backward(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, const void* dh,
                               int64_t ld_dh, void* dgate, int64_t ld_dgate, void* dup, int64_t ld_dup, int dtype,
                               int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_swiglu_args(gate, ld_gate, up, ld_up, "dh", dh, ld_dh, dtype, rows, cols));
  PLORA_TRY(check_matrix("dgate", dgate, ld_dgate, rows, cols));
  PLORA_TRY(check_matrix("dup", dup, ld_dup, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  if (rows == 1 || flat(cols, {ld_gate, ld_up, ld_dh, ld_dgate, ld_dup})) cols *= rows, rows = 1;
  return with_float_dtype(dtype, [&](auto t) {
    using T = decltype(t);
    const SwigluBackwardOp<T> op{in<T>(gate), in<T>(up), in<T>(dh), out<T>(dgate), out<T>(dup),
                                 ld_gate, ld_up, ld_dh, ld_dgate, ld_dup};
    const auto swiglu_backward_kernel = walk_kernel<SwigluBackwardOp<T>>;
    swiglu_backward_kernel<<<walk_grid(rows, cols, kThreads), kThreads, 0, as_stream(stream)>>>(op, rows, cols);
    return launch_status("swiglu backward");
  });
}

}  // extern "C"
