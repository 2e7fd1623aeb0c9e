// Attention of new tokens to a key/value cache on the host (plora/decode_attention.h). A task is
// one (new token, kv head): it walks the visible cache rows in chunks, converting each key and
// value row to fp32 once for all the query heads of the group, with an online softmax per head.
// Rows are held with head_dim padded to a multiple of 8 (zeros), so that the dot products and
// the weighted sums run on whole 8-lane vectors. Each output row is written by one task in a fixed
// order: results do not depend on the thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common/decode_attention_contract.h"
#include "parallel.h"
#include "plora/decode_attention.h"
#include "rows.h"
#include "vmath.h"

using namespace plora;

namespace {

constexpr int kChunk = 64;  // cache rows converted at a time

struct Shape {
  int64_t queries, past;
  int heads, kv_heads, dim, padded;
  float scale;
  int group() const { return heads / kv_heads; }
};

// rows [row0, row0 + n) of x's columns [col0, col0 + dim) as fp32 [n][padded]; the padding
// columns are left as they are (zeros)
void load_rows(const void* x, int dtype, int64_t ld, int64_t row0, int n, int64_t col0, const Shape& sh, float* dst) {
  for (int j = 0; j < n; ++j)
    row_to_f32(static_cast<const char*>(x) + ((row0 + j) * ld + col0) * dtype_size(dtype), dtype, sh.dim,
               dst + int64_t{j} * sh.padded);
}

// Σ a[d]·b[d] over n (a multiple of 8) values: eight lanes, then the lanes in order
float dot(const float* a, const float* b, int n) {
  v8 acc = v8_splat(0.0f);
  for (int d = 0; d < n; d += 8) acc = fma8(v8_load(a + d), v8_load(b + d), acc);
  float s = 0.0f;
  for (int l = 0; l < 8; ++l) s += acc[l];
  return s;
}

void decode(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v, int dtype,
            const Shape& sh, void* out, int64_t ld_out) {
  const int group = sh.group(), P = sh.padded;
  // multiply-adds: every new token's heads against its visible keys and values
  const int64_t work = sh.queries * sh.heads * (sh.past + sh.queries) * 2 * P;
#pragma omp parallel if (parallel_worth(work))
  {
    // per task: the group's scaled queries and accumulators [group][P], running max and sum per
    // head, a chunk of scores [group][kChunk] and of keys or values [kChunk][P]
    std::vector<float> qs(static_cast<size_t>(group) * P, 0.0f), o(qs.size()),
        rows(static_cast<size_t>(kChunk) * P, 0.0f), s(static_cast<size_t>(group) * kChunk), m(group), l(group);
#pragma omp for collapse(2) schedule(static)
    for (int64_t i = 0; i < sh.queries; ++i) {
      for (int g = 0; g < sh.kv_heads; ++g) {
        const int64_t visible = sh.past + i + 1, kcol = int64_t{g} * sh.dim;
        for (int r = 0; r < group; ++r) {
          float* qr = qs.data() + int64_t{r} * P;
          row_to_f32(static_cast<const char*>(q) + (i * ld_q + int64_t{g * group + r} * sh.dim) * dtype_size(dtype),
                     dtype, sh.dim, qr);
          for (int d = 0; d < sh.dim; ++d) qr[d] *= sh.scale;
        }
        std::fill(o.begin(), o.end(), 0.0f);
        std::fill(m.begin(), m.end(), -INFINITY);
        std::fill(l.begin(), l.end(), 0.0f);
        for (int64_t k0 = 0; k0 < visible; k0 += kChunk) {
          const int n = static_cast<int>(std::min<int64_t>(kChunk, visible - k0));
          load_rows(k, dtype, ld_k, k0, n, kcol, sh, rows.data());
          for (int r = 0; r < group; ++r) {
            float* sr = s.data() + int64_t{r} * kChunk;
            float top = m[r];
            for (int j = 0; j < n; ++j) {
              sr[j] = dot(qs.data() + int64_t{r} * P, rows.data() + int64_t{j} * P, P);
              top = std::max(top, sr[j]);
            }
            const float alpha = std::exp(m[r] - top);  // 0 for the first chunk (m = -inf)
            float sum = 0.0f;
            for (int j = 0; j < n; ++j) {
              sr[j] = std::exp(sr[j] - top);
              sum += sr[j];
            }
            l[r] = l[r] * alpha + sum;
            m[r] = top;
            float* orow = o.data() + int64_t{r} * P;
            for (int d = 0; d < P; d += 8) v8_store(orow + d, v8_load(orow + d) * v8_splat(alpha));
          }
          load_rows(v, dtype, ld_v, k0, n, kcol, sh, rows.data());
          for (int r = 0; r < group; ++r) {
            const float* sr = s.data() + int64_t{r} * kChunk;
            float* orow = o.data() + int64_t{r} * P;
            for (int j = 0; j < n; ++j) {
              const v8 p = v8_splat(sr[j]);
              const float* vr = rows.data() + int64_t{j} * P;
              for (int d = 0; d < P; d += 8) v8_store(orow + d, fma8(p, v8_load(vr + d), v8_load(orow + d)));
            }
          }
        }
        for (int r = 0; r < group; ++r) {  // every new token sees at least itself: l > 0
          float* orow = o.data() + int64_t{r} * P;
          for (int d = 0; d < sh.dim; ++d) orow[d] /= l[r];
          f32_to_row(orow, dtype, sh.dim,
                     static_cast<char*>(out) + (i * ld_out + int64_t{g * group + r} * sh.dim) * dtype_size(dtype));
        }
      }
    }
  }
}

}  // namespace

extern "C" {

int plora_cpu_decode_attention(const void* q, int64_t ld_q, const void* k_cache, int64_t ld_k, const void* v_cache,
                               int64_t ld_v, int dtype, int64_t queries, int64_t past, int heads, int kv_heads,
                               int head_dim, float scale, void* out, int64_t ld_out) {
  PLORA_TRY(check_decode_attention(q, ld_q, k_cache, ld_k, v_cache, ld_v, dtype, queries, past, heads, kv_heads,
                                   head_dim, scale, out, ld_out));
  const Shape sh{queries, past, heads, kv_heads, head_dim, static_cast<int>(round_up(head_dim, 8)), scale};
  decode(q, ld_q, k_cache, ld_k, v_cache, ld_v, dtype, sh, out, ld_out);
  return ok();
}

}  // extern "C"
