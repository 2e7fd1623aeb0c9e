/* The argument contract of the decode_attention family (plora/decode_attention.h), shared by its
 * C++ and CUDA entry points. The Java facade checks first and names the tensors; this guards
 * direct C callers. */
#ifndef PLORA_COMMON_DECODE_ATTENTION_CONTRACT_H
#define PLORA_COMMON_DECODE_ATTENTION_CONTRACT_H

#include <cmath>
#include <cstdint>

#include "checks.h"
#include "plora/decode_attention.h"

namespace plora {

inline int check_decode_attention(const void* q, int64_t ld_q, const void* k_cache, int64_t ld_k,
                                  const void* v_cache, int64_t ld_v, int dtype, int64_t queries, int64_t past,
                                  int heads, int kv_heads, int head_dim, float scale, const void* out,
                                  int64_t ld_out) {
  PLORA_TRY(check_dtype("dtype", dtype));
  if (queries < 0 || past < 0)
    return fail(PLORA_ERR_INVALID, "decode_attention: queries %lld and past %lld must not be negative",
                (long long)queries, (long long)past);
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0)
    return fail(PLORA_ERR_INVALID, "decode_attention: heads %d is not a positive multiple of kv_heads %d", heads,
                kv_heads);
  if (head_dim < 1 || head_dim > PLORA_ATTENTION_MAX_HEAD_DIM)
    return fail(PLORA_ERR_INVALID, "decode_attention: head_dim %d not in [1, %d]", head_dim,
                PLORA_ATTENTION_MAX_HEAD_DIM);
  if (!std::isfinite(scale)) return fail(PLORA_ERR_INVALID, "decode_attention: scale %g is not finite", scale);
  const int64_t q_cols = int64_t{heads} * head_dim, kv_cols = int64_t{kv_heads} * head_dim;
  PLORA_TRY(check_matrix("q", q, ld_q, queries, q_cols));
  PLORA_TRY(check_matrix("k_cache", k_cache, ld_k, past + queries, kv_cols));
  PLORA_TRY(check_matrix("v_cache", v_cache, ld_v, past + queries, kv_cols));
  return check_matrix("out", out, ld_out, queries, q_cols);
}

}  // namespace plora

#endif
