// Token embeddings on the host (plora/embedding.h): the ids are checked first, then rows are
// gathered in parallel; the backward pass adds by column blocks, each over the tokens in order,
// so the sums do not depend on the thread count.
#include <omp.h>

#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/embedding.h"
#include "rows.h"

using namespace plora;

namespace {

constexpr int64_t kColumnBlock = 256;

// Counts the ids outside [0, vocab) into *bad_ids and fails naming the first one.
int check_ids(const char* what, const int32_t* ids, int64_t ld_ids, int64_t tokens, int64_t vocab, int64_t* bad_ids) {
  int64_t bad = 0, first = -1;
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t id = ids[t * ld_ids];
    if (id < 0 || id >= vocab) {
      if (first < 0) first = t;
      ++bad;
    }
  }
  if (bad_ids != nullptr) *bad_ids = bad;
  if (bad == 0) return PLORA_OK;
  return fail(PLORA_ERR_INVALID, "%s: %lld ids outside [0, %lld), the first at token %lld: %d", what, (long long)bad,
              (long long)vocab, (long long)first, ids[first * ld_ids]);
}

}  // namespace

extern "C" {

int plora_cpu_embedding(const int32_t* ids, int64_t ld_ids, const void* table, int64_t ld_table, int table_dtype,
                        void* out, int64_t ld_out, int out_dtype, int64_t tokens, int64_t vocab, int64_t dim,
                        int64_t* bad_ids) {
  PLORA_TRY(check_embedding_args(ids, ld_ids, table, ld_table, table_dtype, out, ld_out, out_dtype, tokens, vocab, dim));
  PLORA_TRY(check_ids("embedding", ids, ld_ids, tokens, vocab, bad_ids));
  const int in_size = dtype_size(table_dtype), out_size = dtype_size(out_dtype);
#pragma omp parallel if (parallel_worth(tokens * dim))
  {
    std::vector<float> row(static_cast<size_t>(dim));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tokens; ++t) {
      const char* src = static_cast<const char*>(table) + ids[t * ld_ids] * ld_table * in_size;
      row_to_f32(src, table_dtype, dim, row.data());
      f32_to_row(row.data(), out_dtype, dim, static_cast<char*>(out) + t * ld_out * out_size);
    }
  }
  return ok();
}

int plora_cpu_embedding_backward(const int32_t* ids, int64_t ld_ids, const void* dout, int64_t ld_dout, int dtype,
                                 float* dtable, int64_t ld_dtable, int64_t tokens, int64_t vocab, int64_t dim,
                                 int64_t* bad_ids) {
  PLORA_TRY(check_embedding_args(ids, ld_ids, dtable, ld_dtable, PLORA_F32, dout, ld_dout, dtype, tokens, vocab, dim));
  PLORA_TRY(check_ids("embedding backward", ids, ld_ids, tokens, vocab, bad_ids));
  const int64_t blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  const int size = dtype_size(dtype);
#pragma omp parallel for schedule(static) if (parallel_worth(tokens * dim))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kColumnBlock, n = dim - c0 < kColumnBlock ? dim - c0 : kColumnBlock;
    float g[kColumnBlock];
    for (int64_t t = 0; t < tokens; ++t) {
      row_to_f32(static_cast<const char*>(dout) + (t * ld_dout + c0) * size, dtype, n, g);
      float* dst = dtable + ids[t * ld_ids] * ld_dtable + c0;
      for (int64_t j = 0; j < n; ++j) dst[j] += g[j];
    }
  }
  return ok();
}

}  // extern "C"
