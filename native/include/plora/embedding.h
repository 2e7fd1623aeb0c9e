/* Kernel family embedding: token embedding gather by I32 ids, and its scatter-add backward. Contract beside each declaration;
 * status codes, dtypes and the matrix layout in plora/plora.h, the token layout (tokens as rows,
 * heads as column blocks, I32 ids and positions) in docs/design.md. A CUDA entry point takes device
 * pointers and a stream (a cudaStream_t as void*) and keeps the contract of the host function
 * of the same name unless its comment says otherwise. */
#ifndef PLORA_EMBEDDING_H
#define PLORA_EMBEDDING_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[t, :] = table[ids[t], :] for t < tokens, converted from the table's dtype to out's.
 * ids: I32, element t at ids[t * ld_ids]; table [vocab, dim]; out [tokens, dim]. An id outside
 * [0, vocab) is PLORA_ERR_INVALID naming the first such token, and *bad_ids (when not NULL) counts
 * them; nothing is written then. */
PLORA_API int plora_cpu_embedding(const int32_t* ids, int64_t ld_ids, const void* table,
                                  int64_t ld_table, int table_dtype, void* out, int64_t ld_out,
                                  int out_dtype, int64_t tokens, int64_t vocab, int64_t dim,
                                  int64_t* bad_ids);
/* The same with device ids, table and out; bad_ids is a host pointer. The ids are checked on the
 * device and the count copied back on the stream, which the call waits for; as on the host,
 * nothing is written when one is bad. `scratch`: PLORA_CUDA_SCRATCH_BYTES of device memory. */
PLORA_API int plora_cuda_embedding(const int32_t* ids, int64_t ld_ids, const void* table,
                                   int64_t ld_table, int table_dtype, void* out, int64_t ld_out,
                                   int out_dtype, int64_t tokens, int64_t vocab, int64_t dim,
                                   int64_t* bad_ids, void* scratch, void* stream);

/* dtable[ids[t], :] += dout[t, :] for t < tokens; dtable fp32 [vocab, dim]. The rows of one id
 * are added in token order, so the result does not depend on the thread count. Ids are checked
 * as in the forward pass, before anything is added. */
PLORA_API int plora_cpu_embedding_backward(const int32_t* ids, int64_t ld_ids, const void* dout,
                                           int64_t ld_dout, int dtype, float* dtable,
                                           int64_t ld_dtable, int64_t tokens, int64_t vocab,
                                           int64_t dim, int64_t* bad_ids);
PLORA_API int plora_cuda_embedding_backward(const int32_t* ids, int64_t ld_ids, const void* dout,
                                            int64_t ld_dout, int dtype, float* dtable,
                                            int64_t ld_dtable, int64_t tokens, int64_t vocab,
                                            int64_t dim, int64_t* bad_ids, void* scratch,
                                            void* stream);

#ifdef __cplusplus
}
#endif

#endif
