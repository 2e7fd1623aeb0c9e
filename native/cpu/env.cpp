// libplora_env: loaded before libplora_cpu and OpenBLAS, so before libgomp and OpenBLAS read
// their environment. It sets two defaults (a value the user set is left alone):
//
// - OMP_WAIT_POLICY=PASSIVE: OpenMP threads that spin after a parallel region steal the cores
//   from the OpenBLAS GEMM that follows each of our kernels.
// - OPENBLAS_THREAD_TIMEOUT=4: OpenBLAS workers otherwise spin ~2^28 cycles after each GEMM and
//   slow the kernel that follows it.
//
// On 2 cores the two together took the LoRA layer's overhead over its base GEMMs from ~40% to
// ~13% (plora bench lora, M=2048, K=N=1024, r=16).
#include <cstdlib>

__attribute__((constructor)) static void plora_default_thread_waiting() {
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  setenv("OPENBLAS_THREAD_TIMEOUT", "4", /*overwrite=*/0);
}
