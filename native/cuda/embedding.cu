// Token embeddings on the GPU (plora/embedding.h). CPU reference: native/cpu/embedding.cpp.
// A first kernel counts the bad ids (and finds the first) in the caller's scratch; the gather or
// scatter kernel reads that count on the device and does nothing when it is not zero, so one copy
// back and one wait serve both. The backward pass gives each thread a column and loops over the
// tokens in order: deterministic, no atomics.
#include <algorithm>
#include <cstdint>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cuda.h"
#include "plora/embedding.h"
#include "reduce.cuh"

using namespace plora;

namespace {

constexpr int64_t kMaxRowBlocks = 65535 * 16;

struct IdCheck {
  unsigned long long bad;    // ids outside [0, vocab)
  unsigned long long first;  // the first such token (all ones when none)
};
static_assert(sizeof(IdCheck) <= PLORA_CUDA_SCRATCH_BYTES, "scratch layout");

__global__ void __launch_bounds__(kThreads)
check_ids_kernel(const int32_t* ids, int64_t ld_ids, int64_t tokens, int64_t vocab, IdCheck* check) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < tokens;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t id = ids[t * ld_ids];
    if (id < 0 || id >= vocab) {
      atomicAdd(&check->bad, 1ull);
      atomicMin(&check->first, static_cast<unsigned long long>(t));
    }
  }
}

__global__ void __launch_bounds__(kThreads)
gather_kernel(const int32_t* ids, int64_t ld_ids, const void* table, int64_t ld_table, int table_dtype, void* out,
              int64_t ld_out, int out_dtype, int64_t tokens, int64_t dim, const IdCheck* check) {
  if (check->bad != 0) return;
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const int64_t row = ids[t * ld_ids];
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
      store_f32(out, out_dtype, t * ld_out + j, load_f32(table, table_dtype, row * ld_table + j));
  }
}

__global__ void __launch_bounds__(kThreads)
scatter_add_kernel(const int32_t* ids, int64_t ld_ids, const void* dout, int64_t ld_dout, int dtype, float* dtable,
                   int64_t ld_dtable, int64_t tokens, int64_t dim, const IdCheck* check) {
  if (check->bad != 0) return;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < dim;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x)
    for (int64_t t = 0; t < tokens; ++t) dtable[ids[t * ld_ids] * ld_dtable + j] += load_f32(dout, dtype, t * ld_dout + j);
}

int start_id_check(const int32_t* ids, int64_t ld_ids, int64_t tokens, int64_t vocab, IdCheck* check, cudaStream_t s,
                   const char* what) {
  cudaError_t e = cudaMemsetAsync(check, 0, sizeof(unsigned long long), s);
  if (e == cudaSuccess) e = cudaMemsetAsync(&check->first, 0xff, sizeof(unsigned long long), s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  check_ids_kernel<<<grid_for(tokens, kThreads), kThreads, 0, s>>>(ids, ld_ids, tokens, vocab, check);
  return launch_status(what);
}

// Waits for the stream and reports the bad ids the check kernel found.
int finish_id_check(const int32_t* ids, int64_t ld_ids, int64_t vocab, const IdCheck* check, int64_t* bad_ids,
                    cudaStream_t s, const char* what) {
  IdCheck host{};
  cudaError_t e = cudaMemcpyAsync(&host, check, sizeof host, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  if (bad_ids != nullptr) *bad_ids = static_cast<int64_t>(host.bad);
  if (host.bad == 0) return ok();
  int32_t id = 0;
  e = cudaMemcpy(&id, ids + static_cast<int64_t>(host.first) * ld_ids, sizeof id, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return cuda_fail(what, e);
  return fail(PLORA_ERR_INVALID, "%s: %llu ids outside [0, %lld), the first at token %llu: %d", what, host.bad,
              (long long)vocab, host.first, id);
}

unsigned row_blocks(int64_t rows) { return capped_grid(std::max<int64_t>(rows, 1), kMaxRowBlocks); }

}  // namespace

extern "C" {

int plora_cuda_embedding(const int32_t* ids, int64_t ld_ids, const void* table, int64_t ld_table, int table_dtype,
                         void* out, int64_t ld_out, int out_dtype, int64_t tokens, int64_t vocab, int64_t dim,
                         int64_t* bad_ids, void* scratch, void* stream) {
  PLORA_TRY(check_embedding_args(ids, ld_ids, table, ld_table, table_dtype, out, ld_out, out_dtype, tokens, vocab, dim));
  PLORA_TRY(check_scratch(scratch));
  if (bad_ids != nullptr) *bad_ids = 0;
  if (tokens == 0) return ok();
  cudaStream_t s = as_stream(stream);
  IdCheck* check = static_cast<IdCheck*>(scratch);
  PLORA_TRY(start_id_check(ids, ld_ids, tokens, vocab, check, s, "embedding"));
  if (dim > 0) {
    gather_kernel<<<row_blocks(tokens), kThreads, 0, s>>>(ids, ld_ids, table, ld_table, table_dtype, out, ld_out,
                                                          out_dtype, tokens, dim, check);
    PLORA_TRY(launch_status("embedding"));
  }
  return finish_id_check(ids, ld_ids, vocab, check, bad_ids, s, "embedding");
}

int plora_cuda_embedding_backward(const int32_t* ids, int64_t ld_ids, const void* dout, int64_t ld_dout, int dtype,
                                  float* dtable, int64_t ld_dtable, int64_t tokens, int64_t vocab, int64_t dim,
                                  int64_t* bad_ids, void* scratch, void* stream) {
  PLORA_TRY(check_embedding_args(ids, ld_ids, dtable, ld_dtable, PLORA_F32, dout, ld_dout, dtype, tokens, vocab, dim));
  PLORA_TRY(check_scratch(scratch));
  if (bad_ids != nullptr) *bad_ids = 0;
  if (tokens == 0) return ok();
  cudaStream_t s = as_stream(stream);
  IdCheck* check = static_cast<IdCheck*>(scratch);
  PLORA_TRY(start_id_check(ids, ld_ids, tokens, vocab, check, s, "embedding backward"));
  if (dim > 0) {
    scatter_add_kernel<<<grid_for(dim, kThreads), kThreads, 0, s>>>(ids, ld_ids, dout, ld_dout, dtype, dtable,
                                                                    ld_dtable, tokens, dim, check);
    PLORA_TRY(launch_status("embedding backward"));
  }
  return finish_id_check(ids, ld_ids, vocab, check, bad_ids, s, "embedding backward");
}

}  // extern "C"
