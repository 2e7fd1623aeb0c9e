// LAPACK entry points (plora/lapack.h). A row-major matrix is, as LAPACK reads it, its own
// transpose in column-major order; both routines are called column-major on that transpose, so
// LAPACKE copies nothing: the SVD of aᵀ = v·s·uᵀ hands back u and vt of a with the roles of its
// two factors swapped, and the LQ factorization of aᵀ is the QR factorization of a.
#include <climits>
#include <vector>

#include "../common/errors.h"
#include "openblas.h"
#include "plora/lapack.h"

using namespace plora;

namespace {

constexpr int kColMajor = 102;  // LAPACK_COL_MAJOR

using Dgesdd = int(int layout, char jobz, int m, int n, double* a, int lda, double* s, double* u,
                   int ldu, double* vt, int ldvt);
using Dgelqf = int(int layout, int m, int n, double* a, int lda, double* tau);
using Dorglq = int(int layout, int m, int n, int k, double* a, int lda, const double* tau);

// A LAPACKE function of the loaded OpenBLAS, or nullptr with the error recorded.
template <class F>
F* lapacke(const char* name) {
  void* f = openblas_symbol(name);
  if (f == nullptr)
    fail(PLORA_ERR_INVALID, "%s: no OpenBLAS with LAPACK (libopenblas.so.0) is loaded in this process", name);
  return reinterpret_cast<F*>(f);
}

bool fits(int64_t v) { return v >= 0 && v <= INT_MAX; }

int lapack_failed(const char* routine, int code, int* info) {
  *info = code;
  return fail(PLORA_ERR_INVALID, "%s returned info %d (%s)", routine, code,
              code < 0 ? "an illegal argument" : "no convergence");
}

}  // namespace

extern "C" {

int plora_cpu_dgesdd(int64_t rows, int64_t cols, double* a, int64_t lda, double* s, double* u,
                     int64_t ldu, double* vt, int64_t ldvt, int* info) {
  if (info == nullptr) return fail(PLORA_ERR_INVALID, "plora_cpu_dgesdd: info is NULL");
  *info = 0;
  int64_t k = rows < cols ? rows : cols;
  bool vectors = u != nullptr || vt != nullptr;
  if (rows < 1 || cols < 1 || !fits(rows) || !fits(cols) || !fits(lda) || lda < cols ||
      a == nullptr || s == nullptr || (vectors && (u == nullptr || vt == nullptr ||
      !fits(ldu) || ldu < k || !fits(ldvt) || ldvt < cols)))
    return fail(PLORA_ERR_INVALID, "plora_cpu_dgesdd: bad shape rows=%lld cols=%lld lda=%lld",
                static_cast<long long>(rows), static_cast<long long>(cols),
                static_cast<long long>(lda));
  Dgesdd* dgesdd = lapacke<Dgesdd>("LAPACKE_dgesdd");
  if (dgesdd == nullptr) return PLORA_ERR_INVALID;
  double none = 0;  // LAPACK wants a valid pointer and leading dimension 1 for factors it skips
  int code = vectors ? dgesdd(kColMajor, 'S', static_cast<int>(cols), static_cast<int>(rows), a,
                              static_cast<int>(lda), s, vt, static_cast<int>(ldvt), u,
                              static_cast<int>(ldu))
                     : dgesdd(kColMajor, 'N', static_cast<int>(cols), static_cast<int>(rows), a,
                              static_cast<int>(lda), s, &none, 1, &none, 1);
  return code == 0 ? ok() : lapack_failed("LAPACKE_dgesdd", code, info);
}

int plora_cpu_dorthonormalize(int64_t rows, int64_t cols, double* a, int64_t lda, int* info) {
  if (info == nullptr) return fail(PLORA_ERR_INVALID, "plora_cpu_dorthonormalize: info is NULL");
  *info = 0;
  if (cols < 1 || rows < cols || !fits(rows) || !fits(lda) || lda < cols || a == nullptr)
    return fail(PLORA_ERR_INVALID, "plora_cpu_dorthonormalize: bad shape rows=%lld cols=%lld lda=%lld",
                static_cast<long long>(rows), static_cast<long long>(cols),
                static_cast<long long>(lda));
  Dgelqf* dgelqf = lapacke<Dgelqf>("LAPACKE_dgelqf");
  Dorglq* dorglq = dgelqf != nullptr ? lapacke<Dorglq>("LAPACKE_dorglq") : nullptr;
  if (dorglq == nullptr) return PLORA_ERR_INVALID;
  int m = static_cast<int>(cols), n = static_cast<int>(rows), ld = static_cast<int>(lda);
  std::vector<double> tau(static_cast<size_t>(m));
  int code = dgelqf(kColMajor, m, n, a, ld, tau.data());
  if (code != 0) return lapack_failed("LAPACKE_dgelqf", code, info);
  code = dorglq(kColMajor, m, n, m, a, ld, tau.data());
  return code == 0 ? ok() : lapack_failed("LAPACKE_dorglq", code, info);
}

}  // extern "C"
