/* The argument contract of the attention family (plora/attention.h), shared by its C++ and CUDA
 * entry points. The Java facade checks first and names the tensors; this guards direct C callers. */
#ifndef PLORA_COMMON_ATTENTION_CONTRACT_H
#define PLORA_COMMON_ATTENTION_CONTRACT_H

#include <cmath>
#include <cstdint>

#include "checks.h"
#include "plora/attention.h"

namespace plora {

/* The matrices every call shares; `what` names the call in messages. */
inline int check_attention_common(const char* what, const void* q, int64_t ld_q, const void* k, int64_t ld_k,
                                  const void* v, int64_t ld_v, const int32_t* seq_start, int dtype, int64_t tokens,
                                  int heads, int kv_heads, int head_dim, float scale, const void* lse,
                                  int64_t ld_lse, const int64_t* bad_seq_start) {
  PLORA_TRY(check_dtype("dtype", dtype));
  if (tokens < 0) return fail(PLORA_ERR_INVALID, "%s: tokens %lld < 0", what, (long long)tokens);
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0)
    return fail(PLORA_ERR_INVALID, "%s: heads %d is not a positive multiple of kv_heads %d", what, heads, kv_heads);
  if (head_dim < 1 || head_dim > PLORA_ATTENTION_MAX_HEAD_DIM)
    return fail(PLORA_ERR_INVALID, "%s: head_dim %d not in [1, %d]", what, head_dim, PLORA_ATTENTION_MAX_HEAD_DIM);
  if (!std::isfinite(scale)) return fail(PLORA_ERR_INVALID, "%s: scale %g is not finite", what, scale);
  const int64_t q_cols = static_cast<int64_t>(heads) * head_dim, kv_cols = static_cast<int64_t>(kv_heads) * head_dim;
  PLORA_TRY(check_matrix("q", q, ld_q, tokens, q_cols));
  PLORA_TRY(check_matrix("k", k, ld_k, tokens, kv_cols));
  PLORA_TRY(check_matrix("v", v, ld_v, tokens, kv_cols));
  PLORA_TRY(check_matrix("seq_start", seq_start, 1, tokens, 1));
  PLORA_TRY(check_matrix("lse", lse, ld_lse, tokens, heads));
  if (bad_seq_start == nullptr) return fail(PLORA_ERR_INVALID, "bad_seq_start: null pointer");
  return PLORA_OK;
}

/* Row t of a valid seq_start: the first row of a document, or inside the document of row t - 1. */
PLORA_HD bool seq_start_row_valid(const int32_t* seq_start, int64_t t) {
  return t == 0 ? seq_start[0] == 0 : seq_start[t] == seq_start[t - 1] || seq_start[t] == t;
}

}  // namespace plora

#endif
