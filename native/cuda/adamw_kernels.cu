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
// tensors are; a block finds the tensor of its chunk by binary search over first_chunk.
#include <cstring>
#include <vector>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/adamw.h"
#include "plora/adamw_kernels.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr int kChunk = kThreads * 8;      // elements per chunk: 8 per thread
constexpr int64_t kMaxBlocks = 65535 * 16;  // grid-stride over the chunks beyond this

__global__ void __launch_bounds__(kThreads)
adamw_kernel(const int64_t* table, int count, uint32_t total_chunks, int copy_dtype, AdamwHyper h) {
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
    const int64_t c = cols[i];
    const int64_t size = rows[i] * c;
    float* p = reinterpret_cast<float*>(params[i]);
    const float* g = reinterpret_cast<const float*>(grads[i]);
    float* m = reinterpret_cast<float*>(ms[i]);
    float* v = reinterpret_cast<float*>(vs[i]);
    void* copy = reinterpret_cast<void*>(copies[i]);
    const int64_t ld = copy_ld[i];
    const float lr_i = h.lr * lr_scale[i];
    const int64_t base = static_cast<int64_t>(chunk - first_chunk[i]) * kChunk;
#pragma unroll
    for (int q = 0; q < kChunk / kThreads; ++q) {
      const int64_t e = base + q * kThreads + threadIdx.x;
      if (e >= size) break;
      float pe = p[e], me = m[e], ve = v[e];
      adamw_update(&pe, &me, &ve, g[e], lr_i, h);
      p[e] = pe;
      m[e] = me;
      v[e] = ve;
      if (copy != nullptr) store_f32(copy, copy_dtype, (e / c) * ld + e % c, pe);
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
  adamw_kernel<<<blocks, kThreads, 0, s>>>(static_cast<const int64_t*>(table), count,
                                           static_cast<uint32_t>(total_chunks), copy_dtype, h);
  return launch_status("adamw");
}

}  // extern "C"
