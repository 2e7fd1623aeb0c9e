// Fused multi-tensor AdamW on the GPU: one launch updates every tensor of the list.
// CPU reference: native/cpu/adamw_kernels.cpp; both run the element update of plora/adamw.h.
//
// The caller's device `table` (9 * 8 * count bytes) receives, in one host-to-device copy:
//   bytes [q * 8 * count, (q + 1) * 8 * count) for q = 0..7: int64 params, grads, m, v, copies,
//       copy_ld, rows, cols (the caller's arrays, unchanged);
//   the last 8 * count bytes: float lr_scale[count], then uint32 first_chunk[count], the index of
//       the tensor's first chunk of kChunk elements in the flattened launch (prefix sum of
//       ceil(rows * cols / kChunk) over the tensors before it).
// The grid walks the chunks of all tensors together, so a launch is balanced however unequal the
// tensors are; a block finds the tensor of its chunk by binary search over first_chunk. Within a
// chunk each thread updates two packs of 4 elements in 16-byte accesses (both loaded before
// either is stored), the copy's dtype is a template parameter, and a strided copy finds its
// (row, column) without a 64-bit division (vector.cuh's split_index).
#include <cstring>
#include <vector>

#include "../common/contracts.h"
#include "plora/adamw.h"
#include "plora/adamw_kernels.h"
#include "vector.cuh"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr int kVec = 4;                       // fp32 elements per 16-byte access
constexpr int kChunk = kThreads * kVec * 2;   // elements per chunk: two packs of 4 per thread
constexpr int64_t kMaxBlocks = 65535 * 16;    // grid-stride over the chunks beyond this

// One tensor of the launch, as a chunk's block sees it.
template <class C>
struct Tensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  typename C::Bits* copy;  // null: no copy
  int64_t ld, cols;
  bool copy_flat;   // the copy's rows follow each other: element e is copy[e]
  bool copy_packs;  // ... and its packs are aligned where the masters' are
  double inv_cols;  // for the (row, column) of a strided copy's elements
  float lr;

  __device__ void store_copy(int64_t e, float pe) const {
    if (copy_flat) {
      copy[e] = C::store(pe);
    } else {
      const RowCol rc = split_index(e, cols, inv_cols);
      copy[rc.row * ld + rc.col] = C::store(pe);
    }
  }

  __device__ void element(int64_t e, const AdamwHyper& h) const {
    float pe = p[e], me = m[e], ve = v[e];
    adamw_update(&pe, &me, &ve, g[e], lr, h);
    p[e] = pe;
    m[e] = me;
    v[e] = ve;
    if (copy != nullptr) store_copy(e, pe);
  }

  // The 4 elements from e (aligned): p, m, v in 16-byte stores, the copy in one 16- or 8-byte
  // store where it is flat and aligned, else element by element (its (row, column) split once).
  __device__ void store_pack(int64_t e, float (&pe)[kVec], float (&me)[kVec], float (&ve)[kVec]) const {
    plora::store_pack<F32>(p + e, pe);
    plora::store_pack<F32>(m + e, me);
    plora::store_pack<F32>(v + e, ve);
    if (copy == nullptr) return;
    if (copy_packs) {
      plora::store_pack<C>(copy + e, pe);
    } else if (copy_flat) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) copy[e + k] = C::store(pe[k]);
    } else {
      RowCol rc = split_index(e, cols, inv_cols);
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        copy[rc.row * ld + rc.col] = C::store(pe[k]);
        if (++rc.col == cols) rc.col = 0, ++rc.row;
      }
    }
  }
};

template <class C>
__global__ void __launch_bounds__(kThreads)
adamw_chunks(const int64_t* table, int count, uint32_t total_chunks, AdamwHyper h) {
  const int64_t* params = table;
  const int64_t* grads = table + count;
  const int64_t* ms = table + 2 * (int64_t)count;
  const int64_t* vs = table + 3 * (int64_t)count;
  const int64_t* copies = table + 4 * (int64_t)count;
  const int64_t* copy_ld = table + 5 * (int64_t)count;
  const int64_t* rows = table + 6 * (int64_t)count;
  const int64_t* cols = table + 7 * (int64_t)count;
  const float* lr_scale = reinterpret_cast<const float*>(table + 8 * (int64_t)count);
  const uint32_t* first_chunk = reinterpret_cast<const uint32_t*>(lr_scale + count);

  for (uint32_t chunk = blockIdx.x; chunk < total_chunks; chunk += gridDim.x) {
    // The last tensor whose first chunk is <= chunk (empty tensors own no chunk and are skipped,
    // since the next tensor starts at the same chunk).
    int lo = 0, hi = count - 1;
    while (lo < hi) {
      const int mid = lo + (hi - lo + 1) / 2;
      if (first_chunk[mid] <= chunk) lo = mid; else hi = mid - 1;
    }
    const int i = lo;
    Tensor<C> t;
    t.p = reinterpret_cast<float*>(params[i]);
    t.g = reinterpret_cast<const float*>(grads[i]);
    t.m = reinterpret_cast<float*>(ms[i]);
    t.v = reinterpret_cast<float*>(vs[i]);
    t.copy = reinterpret_cast<typename C::Bits*>(copies[i]);
    t.ld = copy_ld[i];
    t.cols = cols[i];
    t.lr = h.lr * lr_scale[i];
    const int64_t size = rows[i] * t.cols;
    t.copy_flat = t.ld == t.cols || rows[i] == 1;
    t.inv_cols = t.copy_flat ? 0.0 : 1.0 / static_cast<double>(t.cols);
    // The first element (< 4) where p, g, m and v are all 16-byte aligned; the elements before it
    // go alone with the tensor's first chunk. Masters misaligned against each other: all alone.
    int head = -1;
    for (int k = 0; k < kVec && head < 0; ++k)
      if (pack_aligned<kVec>(t.p, k) && pack_aligned<kVec>(t.g, k) && pack_aligned<kVec>(t.m, k) &&
          pack_aligned<kVec>(t.v, k))
        head = k;
    const bool packs = head >= 0;
    if (!packs) head = 0;
    t.copy_packs = t.copy != nullptr && t.copy_flat && packs && pack_aligned<kVec>(t.copy, head);
    const uint32_t own = chunk - first_chunk[i];
    const int lane = static_cast<int>(threadIdx.x);
    if (own == 0 && lane < head && lane < size) t.element(lane, h);
    // [begin, end): this chunk's elements after the head (the host counted chunks of the whole
    // tensor, so the last may be empty).
    const int64_t begin = head + static_cast<int64_t>(own) * kChunk;
    const int64_t end = begin + kChunk < size ? begin + kChunk : size;
    float pe[2][kVec], ge[2][kVec], me[2][kVec], ve[2][kVec];
    bool whole[2];
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int64_t e = begin + (u * kThreads + threadIdx.x) * kVec;
      whole[u] = packs && e + kVec <= end;
      if (whole[u]) {
        load_pack<F32>(t.p + e, pe[u]);
        load_pack<F32>(t.g + e, ge[u]);
        load_pack<F32>(t.m + e, me[u]);
        load_pack<F32>(t.v + e, ve[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int64_t e = begin + (u * kThreads + threadIdx.x) * kVec;
      if (whole[u]) {
#pragma unroll
        for (int k = 0; k < kVec; ++k) adamw_update(&pe[u][k], &me[u][k], &ve[u][k], ge[u][k], t.lr, h);
        t.store_pack(e, pe[u], me[u], ve[u]);
      } else {
        for (int k = 0; k < kVec; ++k)
          if (e + k < end) t.element(e + k, h);
      }
    }
  }
}

}  // namespace

extern "C" {

int plora_cuda_adamw(int count, const int64_t* params, const int64_t* grads, const int64_t* m,
                     const int64_t* v, const int64_t* copies, const int64_t* copy_ld, const int64_t* rows,
                     const int64_t* cols, const float* lr_scale, int copy_dtype, float lr, float beta1,
                     float beta2, float eps, float weight_decay, float grad_scale, float bias_correction1,
                     float bias_correction2, void* table, int64_t table_bytes, void* stream) {
  PLORA_TRY(check_adamw_args(count, params, grads, m, v, copies, copy_ld, rows, cols, lr_scale, copy_dtype));
  if (count == 0) return ok();
  const int64_t needed = 9 * 8 * static_cast<int64_t>(count);
  if (table == nullptr || table_bytes < needed)
    return fail(PLORA_ERR_INVALID, "adamw: device table of %lld bytes, %d tensors need %lld",
                (long long)table_bytes, count, (long long)needed);
  if (reinterpret_cast<uintptr_t>(table) % 8 != 0)
    return fail(PLORA_ERR_INVALID, "adamw: device table is not 8-byte aligned");

  std::vector<int64_t> staging(9 * static_cast<size_t>(count));
  std::vector<uint32_t> first_chunk(count);
  uint64_t total_chunks = 0;
  for (int i = 0; i < count; ++i) {
    first_chunk[i] = static_cast<uint32_t>(total_chunks);
    total_chunks += static_cast<uint64_t>((rows[i] * cols[i] + kChunk - 1) / kChunk);
    if (total_chunks > 0x7fffffffull)  // keeps chunk + gridDim.x from wrapping in the kernel
      return fail(PLORA_ERR_INVALID, "adamw: more than 2^31 chunks of %d elements", kChunk);
  }
  if (total_chunks == 0) return ok();

  const size_t region = static_cast<size_t>(count) * sizeof(int64_t);
  const int64_t* sources[8] = {params, grads, m, v, copies, copy_ld, rows, cols};
  char* dst = reinterpret_cast<char*>(staging.data());
  for (int q = 0; q < 8; ++q) std::memcpy(dst + q * region, sources[q], region);
  std::memcpy(dst + 8 * region, lr_scale, count * sizeof(float));
  std::memcpy(dst + 8 * region + count * sizeof(float), first_chunk.data(), count * sizeof(uint32_t));

  // From pageable memory: the call returns once the staging vector has been read.
  cudaStream_t s = as_stream(stream);
  cudaError_t e = cudaMemcpyAsync(table, staging.data(), 9 * region, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) return cuda_fail("adamw: table copy", e);

  const AdamwHyper h{lr, beta1, beta2, eps, weight_decay, grad_scale, bias_correction1, bias_correction2};
  const unsigned blocks = capped_grid(static_cast<int64_t>(total_chunks), kMaxBlocks);
  return with_float_dtype(copy_dtype, [&](auto c) {
    const auto adamw_kernel = adamw_chunks<decltype(c)>;
    adamw_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const int64_t*>(table), count,
                                             static_cast<uint32_t>(total_chunks), h);
    return launch_status("adamw");
  });
}

}  // extern "C"
