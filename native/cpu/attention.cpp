// Causal grouped-query attention on the host (plora/attention.h), FlashAttention style: a task is
// one head's tile of kTile queries (forward, dq) or one kv head's tile of kTile keys (dk, dv); it
// walks the tiles of the other side that its documents allow. One kv head at a time, its keys and
// values (and, backward, its query heads' queries and output gradients) are packed once as fp32
// with head_dim padded to a multiple of 16, so that tiles are pointers; one register-blocked
// product serves every matrix multiply. Each output element is written by one task in a fixed
// order, so results do not depend on the thread count.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common/attention_contract.h"
#include "parallel.h"
#include "plora/attention.h"
#include "rows.h"
#include "vmath.h"

using namespace plora;

namespace {

constexpr int kTile = 64;  // queries and keys per tile

// c[r][j] (+)= Σ_p a[r][p]·b[p][j] for r < R, j < n (a multiple of 16), p < depth: R rows of c in
// registers, 16 columns at a time, each row of b loaded once for all R. Without Accumulate, c is
// assigned.
template <bool Accumulate, int R>
void product_rows(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int n, int depth) {
  for (int j = 0; j < n; j += 16) {
    v8 acc[R][2];
    for (int r = 0; r < R; ++r) {
      acc[r][0] = Accumulate ? v8_load(c + r * ldc + j) : v8_splat(0.0f);
      acc[r][1] = Accumulate ? v8_load(c + r * ldc + j + 8) : v8_splat(0.0f);
    }
    for (int p = 0; p < depth; ++p) {
      const v8 b0 = v8_load(b + p * ldb + j), b1 = v8_load(b + p * ldb + j + 8);
      for (int r = 0; r < R; ++r) {
        const v8 x = v8_splat(a[r * lda + p]);
        acc[r][0] = fma8(x, b0, acc[r][0]);
        acc[r][1] = fma8(x, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      v8_store(c + r * ldc + j, acc[r][0]);
      v8_store(c + r * ldc + j + 8, acc[r][1]);
    }
  }
}

// c += a·b (c = a·b without Accumulate) for a [m, depth], b [depth, n], c [m, n], all row-major
// fp32; n a multiple of 16.
template <bool Accumulate = true>
void product(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n, int depth) {
  constexpr int kRows = 6;  // 12 accumulators, 2 loads and a broadcast: the 16 vector registers
  int r = 0;
  for (; r + kRows <= m; r += kRows)
    product_rows<Accumulate, kRows>(a + r * lda, lda, b, ldb, c + r * ldc, ldc, n, depth);
  a += r * lda;
  c += r * ldc;
  switch (m - r) {  // the last rows together too: one row alone would wait on loads, not on FMAs
    case 5: product_rows<Accumulate, 5>(a, lda, b, ldb, c, ldc, n, depth); break;
    case 4: product_rows<Accumulate, 4>(a, lda, b, ldb, c, ldc, n, depth); break;
    case 3: product_rows<Accumulate, 3>(a, lda, b, ldb, c, ldc, n, depth); break;
    case 2: product_rows<Accumulate, 2>(a, lda, b, ldb, c, ldc, n, depth); break;
    case 1: product_rows<Accumulate, 1>(a, lda, b, ldb, c, ldc, n, depth); break;
    default: break;
  }
}

// dst[i][d] = factor · src[row0 + i][col0 + d] for i < rows, d < dim; zeros up to `padded` columns
// and kTile rows.
void load_tile(const void* src, int dtype, int64_t ld, int64_t row0, int rows, int64_t col0, int dim, int padded,
               float factor, float* dst) {
  std::fill(dst, dst + kTile * padded, 0.0f);
  for (int i = 0; i < rows; ++i) {
    float* out = dst + i * padded;
    row_to_f32(static_cast<const char*>(src) + ((row0 + i) * ld + col0) * dtype_size(dtype), dtype, dim, out);
    if (factor != 1.0f)
      for (int d = 0; d < dim; ++d) out[d] *= factor;
  }
}

// dst[d][j] = src[j][d] for a [kTile, padded] tile: keys become columns.
void transpose(const float* src, int padded, float* dst) {
  for (int j = 0; j < kTile; ++j)
    for (int d = 0; d < padded; ++d) dst[d * kTile + j] = src[j * padded + d];
}

// dst[j][i] = src[i][j] for a [kTile, kTile] tile.
void transpose_square(const float* src, float* dst) {
  for (int i = 0; i < kTile; ++i)
    for (int j = 0; j < kTile; ++j) dst[j * kTile + i] = src[i * kTile + j];
}

// dst[i][d] = src[i][d]·factor, rounded to the storage dtype, for i < rows, d < dim.
void store_tile(const float* src, int padded, int rows, int dim, float factor, void* dst, int dtype, int64_t ld,
                int64_t row0, int64_t col0, float* buffer) {
  for (int i = 0; i < rows; ++i) {
    for (int d = 0; d < dim; ++d) buffer[d] = src[i * padded + d] * factor;
    f32_to_row(buffer, dtype, dim, static_cast<char*>(dst) + ((row0 + i) * ld + col0) * dtype_size(dtype));
  }
}

// The keys of a tile starting at k0 (n of them) that query t sees: [lo, hi) in tile columns.
struct Span {
  int lo, hi;
};

// Both ends lie in [0, n], an empty span included (a document that starts after the tile).
inline Span visible(const int32_t* seq_start, int64_t t, int64_t k0, int n) {
  const int64_t lo = std::clamp<int64_t>(seq_start[t] - k0, 0, n), hi = std::clamp<int64_t>(t - k0 + 1, lo, n);
  return {static_cast<int>(lo), static_cast<int>(hi)};
}

// The largest score of a row over its visible span, the rest of the row set to -inf first.
float masked_max(float* row, Span span) {
  for (int j = 0; j < span.lo; ++j) row[j] = -INFINITY;
  for (int j = span.hi; j < kTile; ++j) row[j] = -INFINITY;
  v8 m = v8_load(row);
  for (int j = 8; j < kTile; j += 8) {
    const v8 x = v8_load(row + j);
    m = x > m ? x : m;
  }
  float top = m[0];
  for (int l = 1; l < 8; ++l) top = std::max(top, m[l]);
  return top;
}

// Σ_j p[j] over kTile columns, in eight lanes and then in lane order.
float row_sum(const float* p) {
  v8 acc = v8_load(p);
  for (int j = 8; j < kTile; j += 8) acc += v8_load(p + j);
  float sum = 0.0f;
  for (int l = 0; l < 8; ++l) sum += acc[l];
  return sum;
}

// p[j] = e^(s[j] - shift) for j in span, 0 elsewhere (kTile columns).
void exp_row(const float* s, float shift, Span span, float* p) {
  const v8 m = v8_splat(shift);
  for (int j = 0; j < kTile; j += 8) v8_store(p + j, v8_exp(v8_load(s + j) - m));
  for (int j = 0; j < span.lo; ++j) p[j] = 0.0f;
  for (int j = span.hi; j < kTile; ++j) p[j] = 0.0f;
}

int64_t count_bad_seq_start(const int32_t* seq_start, int64_t tokens) {
  int64_t bad = 0;
  for (int64_t t = 0; t < tokens; ++t) bad += !seq_start_row_valid(seq_start, t);
  return bad;
}

struct Shape {
  int64_t tokens;
  int heads, kv_heads, dim, padded;
  float scale;
  int group() const { return heads / kv_heads; }
  int64_t tiles() const { return (tokens + kTile - 1) / kTile; }
  int64_t padded_rows() const { return tiles() * kTile; }
  int rows_at(int64_t row0) const { return static_cast<int>(std::min<int64_t>(kTile, tokens - row0)); }
  // Multiply-adds of one kv head's forward tasks: for each of its query heads, every (query tile,
  // key tile) pair of the causal triangle, two kTile x kTile x padded products.
  int64_t task_work() const { return int64_t{group()} * tiles() * (tiles() + 1) / 2 * kTile * kTile * 2 * padded; }
};

// Buffers of one task: tiles of kTile x padded (or kTile x kTile) fp32.
struct Tiles {
  explicit Tiles(int padded, int count) : data(static_cast<size_t>(count) * kTile * std::max(padded, kTile)) {
    stride = static_cast<size_t>(kTile) * std::max(padded, kTile);
  }
  float* operator[](int i) { return data.data() + i * stride; }
  std::vector<float> data;
  size_t stride;
};

// One head's columns of x for every token as fp32 [padded_rows][padded], times factor, zeros past
// the tokens and head_dim: packed once per call, so that the tiles are pointers into it.
void pack_rows(const void* x, int dtype, int64_t ld, int64_t col0, const Shape& sh, float factor, float* dst) {
#pragma omp parallel for schedule(static) if (parallel_worth(sh.padded_rows() * sh.padded))
  for (int64_t tile = 0; tile < sh.tiles(); ++tile)
    load_tile(x, dtype, ld, tile * kTile, sh.rows_at(tile * kTile), col0, sh.dim, sh.padded, factor,
              dst + tile * kTile * sh.padded);
}

// Packed rows transposed tile by tile: dst[tile][d][j] = rows[tile·kTile + j][d].
void pack_transposed(const float* rows, const Shape& sh, float* dst) {
#pragma omp parallel for schedule(static) if (parallel_worth(sh.padded_rows() * sh.padded))
  for (int64_t tile = 0; tile < sh.tiles(); ++tile)
    transpose(rows + tile * kTile * sh.padded, sh.padded, dst + tile * kTile * sh.padded);
}

// The first key tile that query tile q0 needs: the tile of its first query's document start.
inline int64_t first_key_tile(const int32_t* seq_start, int64_t q0) { return seq_start[q0] / kTile * kTile; }

// Forward, one kv head at a time: its keys (transposed) and values packed, then a task per (query
// head of the group, query tile).
void forward(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v,
             const int32_t* seq_start, int dtype, const Shape& sh, void* out, int64_t ld_out, float* lse,
             int64_t ld_lse) {
  const int P = sh.padded;
  const int64_t tiles = sh.tiles();
  const size_t packed = static_cast<size_t>(sh.padded_rows() * P);
  std::vector<float> keys(packed), kt(packed), values(packed);
  for (int g = 0; g < sh.kv_heads; ++g) {
    pack_rows(k, dtype, ld_k, int64_t{g} * sh.dim, sh, 1.0f, keys.data());
    pack_transposed(keys.data(), sh, kt.data());
    pack_rows(v, dtype, ld_v, int64_t{g} * sh.dim, sh, 1.0f, values.data());
#pragma omp parallel if (parallel_worth(sh.task_work()))
    {
      Tiles buf(P, 4);
      float *qs = buf[0], *s = buf[1], *o = buf[2], *row_out = buf[3];
      float m[kTile], l[kTile];
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < sh.group() * tiles; ++task) {
        const int h = g * sh.group() + static_cast<int>(task % sh.group());
        const int64_t q0 = (tiles - 1 - task / sh.group()) * kTile;  // the longest (last) tiles first
        const int nq = sh.rows_at(q0);
        load_tile(q, dtype, ld_q, q0, nq, int64_t{h} * sh.dim, sh.dim, P, sh.scale, qs);
        std::fill(o, o + kTile * P, 0.0f);
        std::fill(m, m + kTile, -INFINITY);
        std::fill(l, l + kTile, 0.0f);
        for (int64_t k0 = first_key_tile(seq_start, q0); k0 < q0 + nq; k0 += kTile) {
          const int nk = static_cast<int>(std::min<int64_t>(kTile, q0 + nq - k0));
          product<false>(qs, P, kt.data() + k0 * P, kTile, s, kTile, nq, kTile, P);
          for (int i = 0; i < nq; ++i) {
            float* row = s + i * kTile;
            const Span span = visible(seq_start, q0 + i, k0, nk);
            const float top = std::max(m[i], masked_max(row, span));
            if (top == -INFINITY) {  // no visible key yet: the row stays empty
              std::fill(row, row + kTile, 0.0f);
              continue;
            }
            const float alpha = std::exp(m[i] - top);  // 0 for the first visible keys (m = -inf)
            exp_row(row, top, span, row);
            l[i] = l[i] * alpha + row_sum(row);
            m[i] = top;
            if (alpha != 1.0f)
              for (int d = 0; d < P; d += 8) v8_store(o + i * P + d, v8_load(o + i * P + d) * v8_splat(alpha));
          }
          product(s, kTile, values.data() + k0 * P, P, o, P, nq, P, nk);
        }
        for (int i = 0; i < nq; ++i) {  // every query sees itself, so l > 0
          for (int d = 0; d < sh.dim; ++d) row_out[d] = o[i * P + d] / l[i];
          f32_to_row(row_out, dtype, sh.dim,
                     static_cast<char*>(out) + ((q0 + i) * ld_out + int64_t{h} * sh.dim) * dtype_size(dtype));
          lse[(q0 + i) * ld_lse + h] = m[i] + std::log(l[i]);
        }
      }
    }
  }
}

// The probabilities and their score gradients of one (query tile, key tile) pair, recomputed from
// lse: s = P (masked, from the scaled queries qs and the transposed keys kt), ds = P ⊙ (dout·vᵀ −
// delta) with dp the scratch for dout·vᵀ.
void probabilities(const float* qs, const float* kt, const float* dos, const float* vt, const float* lse_rows,
                   const float* delta_rows, const int32_t* seq_start, int64_t q0, int nq, int64_t k0, int nk, int P,
                   float* s, float* dp, float* ds) {
  product<false>(qs, P, kt, kTile, s, kTile, nq, kTile, P);
  product<false>(dos, P, vt, kTile, dp, kTile, nq, kTile, P);
  for (int i = 0; i < nq; ++i) {
    float* row = s + i * kTile;
    exp_row(row, lse_rows[i], visible(seq_start, q0 + i, k0, nk), row);
    for (int j = 0; j < kTile; ++j) ds[i * kTile + j] = row[j] * (dp[i * kTile + j] - delta_rows[i]);
  }
  std::fill(s + nq * kTile, s + kTile * kTile, 0.0f);
  std::fill(ds + nq * kTile, ds + kTile * kTile, 0.0f);
}

// Backward, one kv head at a time: its keys (as rows and transposed) and values (transposed)
// packed, and its query heads' scaled queries and output gradients; then dq by (query head,
// query tile) and dk, dv by key tile, each task the only writer of its rows.
void backward(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v,
              const void* out, int64_t ld_out, const void* dout, int64_t ld_dout, const float* lse, int64_t ld_lse,
              const int32_t* seq_start, int dtype, const Shape& sh, void* dq, int64_t ld_dq, void* dk, int64_t ld_dk,
              void* dv, int64_t ld_dv) {
  const int P = sh.padded, group = sh.group();
  const int64_t tiles = sh.tiles();
  // delta[h][t] = Σ_d dout·out, and lse gathered per head: [heads][tokens] each
  std::vector<float> delta(static_cast<size_t>(sh.heads * sh.tokens)), lse_h(delta.size());
#pragma omp parallel if (parallel_worth(sh.tokens * sh.heads * sh.dim))
  {
    std::vector<float> ob(static_cast<size_t>(sh.dim)), db(static_cast<size_t>(sh.dim));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < sh.tokens; ++t) {
      for (int h = 0; h < sh.heads; ++h) {
        const int64_t col = int64_t{h} * sh.dim;
        row_to_f32(static_cast<const char*>(out) + (t * ld_out + col) * dtype_size(dtype), dtype, sh.dim, ob.data());
        row_to_f32(static_cast<const char*>(dout) + (t * ld_dout + col) * dtype_size(dtype), dtype, sh.dim, db.data());
        float sum = 0.0f;
        for (int d = 0; d < sh.dim; ++d) sum += ob[d] * db[d];
        delta[h * sh.tokens + t] = sum;
        lse_h[h * sh.tokens + t] = lse[t * ld_lse + h];
      }
    }
  }
  const size_t packed = static_cast<size_t>(sh.padded_rows() * P);
  std::vector<float> keys(packed), kt(packed), vt(packed), scratch(packed), qs(packed * group), dos(packed * group);
  for (int g = 0; g < sh.kv_heads; ++g) {
    pack_rows(k, dtype, ld_k, int64_t{g} * sh.dim, sh, 1.0f, keys.data());
    pack_transposed(keys.data(), sh, kt.data());
    pack_rows(v, dtype, ld_v, int64_t{g} * sh.dim, sh, 1.0f, scratch.data());
    pack_transposed(scratch.data(), sh, vt.data());
    for (int i = 0; i < group; ++i) {
      const int64_t col = int64_t{g * group + i} * sh.dim;
      pack_rows(q, dtype, ld_q, col, sh, sh.scale, qs.data() + i * packed);
      pack_rows(dout, dtype, ld_dout, col, sh, 1.0f, dos.data() + i * packed);
    }
#pragma omp parallel if (parallel_worth(2 * sh.task_work()))  // dq, then dk and dv
    {
      Tiles buf(P, 6);
      float *s = buf[0], *dp = buf[1], *ds = buf[2], *acc = buf[3], *acc2 = buf[4], *row_out = buf[5];
      // dq: one task per (query head, query tile), over the key tiles its documents reach
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < group * tiles; ++task) {
        const int i = static_cast<int>(task % group), h = g * group + i;
        const int64_t q0 = (tiles - 1 - task / group) * kTile;
        const int nq = sh.rows_at(q0);
        const float* q_tile = qs.data() + i * packed + q0 * P;
        const float* do_tile = dos.data() + i * packed + q0 * P;
        std::fill(acc, acc + kTile * P, 0.0f);
        for (int64_t k0 = first_key_tile(seq_start, q0); k0 < q0 + nq; k0 += kTile) {
          const int nk = static_cast<int>(std::min<int64_t>(kTile, q0 + nq - k0));
          probabilities(q_tile, kt.data() + k0 * P, do_tile, vt.data() + k0 * P, &lse_h[h * sh.tokens + q0],
                        &delta[h * sh.tokens + q0], seq_start, q0, nq, k0, nk, P, s, dp, ds);
          product(ds, kTile, keys.data() + k0 * P, P, acc, P, nq, P, nk);
        }
        store_tile(acc, P, nq, sh.dim, sh.scale, dq, dtype, ld_dq, q0, int64_t{h} * sh.dim, row_out);
      }
      // dk, dv: one task per key tile, over the group's query heads and the query tiles that see it
#pragma omp for schedule(dynamic, 1)
      for (int64_t tile = 0; tile < tiles; ++tile) {
        const int64_t k0 = tile * kTile;  // the first tiles see the most queries
        const int nk = sh.rows_at(k0);
        float* dk_acc = acc;
        float* dv_acc = acc2;
        std::fill(dk_acc, dk_acc + kTile * P, 0.0f);
        std::fill(dv_acc, dv_acc + kTile * P, 0.0f);
        for (int i = 0; i < group; ++i) {
          const int h = g * group + i;
          // queries from k0 on, until a tile whose first query's document starts after the last key
          for (int64_t q0 = k0; q0 < sh.tokens && seq_start[q0] < k0 + nk; q0 += kTile) {
            const int nq = sh.rows_at(q0);
            const float* q_tile = qs.data() + i * packed + q0 * P;
            const float* do_tile = dos.data() + i * packed + q0 * P;
            probabilities(q_tile, kt.data() + k0 * P, do_tile, vt.data() + k0 * P, &lse_h[h * sh.tokens + q0],
                          &delta[h * sh.tokens + q0], seq_start, q0, nq, k0, nk, P, s, dp, ds);
            transpose_square(s, dp);
            product(dp, kTile, do_tile, P, dv_acc, P, nk, P, nq);
            transpose_square(ds, dp);
            product(dp, kTile, q_tile, P, dk_acc, P, nk, P, nq);
          }
        }
        store_tile(dk_acc, P, nk, sh.dim, 1.0f, dk, dtype, ld_dk, k0, int64_t{g} * sh.dim, row_out);
        store_tile(dv_acc, P, nk, sh.dim, 1.0f, dv, dtype, ld_dv, k0, int64_t{g} * sh.dim, row_out);
      }
    }
  }
}

}  // namespace

extern "C" {

int plora_cpu_attention_forward(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v,
                                const int32_t* seq_start, int dtype, int64_t tokens, int heads, int kv_heads,
                                int head_dim, float scale, void* out, int64_t ld_out, float* lse, int64_t ld_lse,
                                int64_t* bad_seq_start) {
  PLORA_TRY(check_attention_common("attention_forward", q, ld_q, k, ld_k, v, ld_v, seq_start, dtype, tokens, heads,
                                   kv_heads, head_dim, scale, lse, ld_lse, bad_seq_start));
  PLORA_TRY(check_matrix("out", out, ld_out, tokens, int64_t{heads} * head_dim));
  *bad_seq_start = count_bad_seq_start(seq_start, tokens);
  if (*bad_seq_start > 0)
    return fail(PLORA_ERR_INVALID,
                "attention_forward: seq_start: %lld of %lld rows do not start or continue a document",
                (long long)*bad_seq_start, (long long)tokens);
  const Shape sh{tokens, heads, kv_heads, head_dim, static_cast<int>(round_up(head_dim, 16)), scale};
  forward(q, ld_q, k, ld_k, v, ld_v, seq_start, dtype, sh, out, ld_out, lse, ld_lse);
  return ok();
}

int plora_cpu_attention_backward(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v,
                                 int64_t ld_v, const void* out, int64_t ld_out, const void* dout, int64_t ld_dout,
                                 const float* lse, int64_t ld_lse, const int32_t* seq_start, int dtype, int64_t tokens,
                                 int heads, int kv_heads, int head_dim, float scale, void* dq, int64_t ld_dq, void* dk,
                                 int64_t ld_dk, void* dv, int64_t ld_dv, int64_t* bad_seq_start) {
  PLORA_TRY(check_attention_common("attention_backward", q, ld_q, k, ld_k, v, ld_v, seq_start, dtype, tokens, heads,
                                   kv_heads, head_dim, scale, lse, ld_lse, bad_seq_start));
  const int64_t q_cols = int64_t{heads} * head_dim, kv_cols = int64_t{kv_heads} * head_dim;
  PLORA_TRY(check_matrix("out", out, ld_out, tokens, q_cols));
  PLORA_TRY(check_matrix("dout", dout, ld_dout, tokens, q_cols));
  PLORA_TRY(check_matrix("dq", dq, ld_dq, tokens, q_cols));
  PLORA_TRY(check_matrix("dk", dk, ld_dk, tokens, kv_cols));
  PLORA_TRY(check_matrix("dv", dv, ld_dv, tokens, kv_cols));
  *bad_seq_start = count_bad_seq_start(seq_start, tokens);
  if (*bad_seq_start > 0)
    return fail(PLORA_ERR_INVALID,
                "attention_backward: seq_start: %lld of %lld rows do not start or continue a document",
                (long long)*bad_seq_start, (long long)tokens);
  const Shape sh{tokens, heads, kv_heads, head_dim, static_cast<int>(round_up(head_dim, 16)), scale};
  backward(q, ld_q, k, ld_k, v, ld_v, out, ld_out, dout, ld_dout, lse, ld_lse, seq_start, dtype, sh, dq, ld_dq, dk,
           ld_dk, dv, ld_dv);
  return ok();
}

}  // extern "C"
