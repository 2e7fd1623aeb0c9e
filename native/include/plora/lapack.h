/* Dense decompositions in double precision through the LAPACK of the OpenBLAS that this process
 * has already loaded (the JavaCPP preset's libopenblas.so.0, a full build with LAPACKE inside),
 * found by symbol at run time as plora_cpu_blas_threads finds it: the same library and thread
 * pool as the GEMMs, never a second BLAS. Matrices are row-major doubles with a leading
 * dimension; sizes fit LAPACK's 32-bit integers. Each returns PLORA_OK with *info = 0, or an
 * error: LAPACK's own info in *info (< 0: argument -info was illegal, > 0: no convergence), or
 * *info = 0 and PLORA_ERR_INVALID when OpenBLAS is not loaded or a size is out of range. */
#ifndef PLORA_LAPACK_H
#define PLORA_LAPACK_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Thin SVD a = u·diag(s)·vt of a rows x cols matrix, k = min(rows, cols), by divide and conquer
 * (LAPACKE_dgesdd); a is destroyed. s[k] descending; u [rows, k] (ldu >= k) and vt [k, cols]
 * (ldvt >= cols), or both NULL for the singular values alone. */
PLORA_API int plora_cpu_dgesdd(int64_t rows, int64_t cols, double* a, int64_t lda, double* s,
                               double* u, int64_t ldu, double* vt, int64_t ldvt, int* info);

/* a [rows, cols] (rows >= cols) becomes the Q of its thin QR: orthonormal columns spanning the
 * columns of a (LAPACKE_dgelqf and LAPACKE_dorglq on the column-major view of a). */
PLORA_API int plora_cpu_dorthonormalize(int64_t rows, int64_t cols, double* a, int64_t lda,
                                        int* info);

#ifdef __cplusplus
}
#endif

#endif
