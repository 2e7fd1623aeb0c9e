// plora_cuda_bench: times libplora_cuda's kernels on one GPU against ceilings measured in the same run.
//
//   plora_cuda_bench [--quick] [--csv FILE] [--reps N] [--warmup N]
//
// Method:
//  * Ceilings, measured first: device-to-device copy bandwidth (cudaMemcpyAsync of 1 GiB, counting
//    the bytes read plus the bytes written) and the cuBLAS GEMM rate (cublasGemmEx, fp32 compute,
//    BF16 and F32 storage, M=8192, N=K=4096). cuBLAS is loaded at run time with dlopen, so this
//    program builds without its headers; without it the GEMM rows say "skipped: <reason>".
//  * Every row: warm-up calls, then `reps` timed calls, each between two CUDA events on one stream,
//    each preceded by an untimed memset of a buffer of at least 4x the L2 (256 MiB or more) so that
//    no call finds its inputs in the cache. The MEDIAN is reported (min and max go to the CSV).
//  * Inputs are random, never zeros, and laid out as LoraLinear lays them out: x inside the
//    augmented [M,K+r] activation, dY inside [M,N+r], W, A, B inside W_aug [N+r,K+r].
//  * Floors: each row's fewest bytes (each input read once, each output written once) and FLOPs.
//    %ceil = floor time / median, where the floor time is max(bytes / copy bandwidth,
//    FLOPs / fp32 rate) for our kernels, the fp32 rate being cuBLAS's F32 GEMM rate (fp32 compute
//    without TF32 runs on the CUDA cores, as our kernels do; the BF16 shrink, dY pass and dA/dX at
//    r >= 16 run on tensor cores and are held to cuBLAS's BF16 rate, each row followed by the same
//    call on the CUDA-core path, "odd-ld"); "bound" says which term is larger.
//    %copy = (floor bytes / median) / copy bandwidth: the fraction of a device-to-device memcpy of
//    the same run that the kernel's bytes reach, whatever bounds it (docs/kernels.md gives the
//    expected fractions of the LoRA kernels).
//    GEMM rows: achieved FLOP rate / cuBLAS's rate for that dtype.
//  * The LoRA layer step (forward + backward on the augmented path) is timed interleaved with the
//    two base GEMMs alone, and the ratio layer / base is printed (target <= 1.07); so are the two
//    augmented GEMMs alone, which splits the overhead into GEMM shape and our kernels.
// Rows print as they are measured; a summary line ends the output. Any failed CUDA, cuBLAS or
// plora call prints the error and exits 2 (an asynchronous fault shows at the end of the row after
// the last one printed); no usable GPU exits 77.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <library_types.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "plora/cuda.h"

namespace {

[[noreturn]] void die(const char* fmt, ...) {
  std::fflush(stdout);
  std::va_list args;
  va_start(args, fmt);
  std::fprintf(stderr, "plora_cuda_bench: error: ");
  std::vfprintf(stderr, fmt, args);
  std::fprintf(stderr, "\n");
  va_end(args);
  std::exit(2);
}

#define CK(call)                                                                             \
  do {                                                                                       \
    cudaError_t ck_ = (call);                                                                \
    if (ck_ != cudaSuccess) die("line %d: %s: %s", __LINE__, #call, cudaGetErrorString(ck_)); \
  } while (0)

#define PK(call)                                                                                 \
  do {                                                                                           \
    int pk_ = (call);                                                                            \
    if (pk_ != PLORA_OK) die("line %d: %s: status %d: %s", __LINE__, #call, pk_, plora_cuda_last_error()); \
  } while (0)

// ---------------------------------------------------------------- cuBLAS, loaded at run time

// The few cuBLAS declarations used (cublas_api.h; values as in the cuBLAS documentation and the
// JavaCPP cuBLAS 13.1 presets this project binds): the handle is opaque, the enums are ints.
constexpr int kCublasOpN = 0;           // CUBLAS_OP_N
constexpr int kCublasOpT = 1;           // CUBLAS_OP_T
constexpr int kCublasCompute32F = 68;   // CUBLAS_COMPUTE_32F (no TF32 under the default math mode)
constexpr int kCublasGemmDefault = -1;  // CUBLAS_GEMM_DEFAULT
constexpr int kCublasSuccess = 0;       // CUBLAS_STATUS_SUCCESS

class Cublas {
 public:
  // Empty when cuBLAS is ready, else why it is not.
  std::string load(cudaStream_t stream) {
    const char* env = std::getenv("PLORA_CUBLAS");  // an explicit path wins
    std::string tried;
    std::vector<std::string> names;
    if (env != nullptr && *env != '\0') names.push_back(env);
    names.push_back("libcublas.so.13");
    names.push_back("libcublas.so");
#ifdef PLORA_CUDA_LIBRARY_DIR
    names.push_back(std::string(PLORA_CUDA_LIBRARY_DIR) + "/libcublas.so.13");
#endif
    for (const std::string& name : names) {
      lib_ = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib_ != nullptr) break;
      const char* why = dlerror();
      tried += (tried.empty() ? "" : "; ") + std::string(why != nullptr ? why : name.c_str());
    }
    if (lib_ == nullptr) {
      std::printf("cuBLAS: dlopen failed: %s\n", tried.c_str());
      return "cannot dlopen libcublas.so.13 / libcublas.so (set PLORA_CUBLAS=/path/libcublas.so.13)";
    }
    create_ = reinterpret_cast<CreateFn>(dlsym(lib_, "cublasCreate_v2"));
    destroy_ = reinterpret_cast<DestroyFn>(dlsym(lib_, "cublasDestroy_v2"));
    set_stream_ = reinterpret_cast<SetStreamFn>(dlsym(lib_, "cublasSetStream_v2"));
    gemm_ex_ = reinterpret_cast<GemmExFn>(dlsym(lib_, "cublasGemmEx"));
    status_string_ = reinterpret_cast<StatusStringFn>(dlsym(lib_, "cublasGetStatusString"));  // optional
    if (!create_ || !destroy_ || !set_stream_ || !gemm_ex_) return "cuBLAS lacks cublasCreate_v2/cublasGemmEx";
    int status = create_(&handle_);
    if (status != kCublasSuccess) {
      handle_ = nullptr;
      return "cublasCreate_v2: " + status_text(status);
    }
    status = set_stream_(handle_, stream);
    if (status != kCublasSuccess) {
      destroy_(handle_);
      handle_ = nullptr;
      return "cublasSetStream_v2: " + status_text(status);
    }
    return "";
  }

  ~Cublas() {
    if (handle_ != nullptr) destroy_(handle_);
    // lib_ stays loaded: cuBLAS may still have work registered with the runtime at exit.
  }

  bool ready() const { return handle_ != nullptr; }

  // Row-major C = op(A) op(B) (C [m,n]), issued as column-major C^T = op(B)^T op(A)^T, as the
  // Java CudaBackend does; all three matrices of one dtype.
  void gemm(bool trans_a, const void* a, int64_t lda, bool trans_b, const void* b, int64_t ldb, void* c,
            int64_t ldc, int dtype, int64_t m, int64_t n, int64_t k, float beta) {
    const float alpha = 1.0f;
    const cudaDataType type = dtype == PLORA_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    const int status = gemm_ex_(handle_, trans_b ? kCublasOpT : kCublasOpN, trans_a ? kCublasOpT : kCublasOpN,
                                static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b, type,
                                static_cast<int>(ldb), a, type, static_cast<int>(lda), &beta, c, type,
                                static_cast<int>(ldc), kCublasCompute32F, kCublasGemmDefault);
    if (status != kCublasSuccess) die("cublasGemmEx (m=%lld n=%lld k=%lld): %s", (long long)m, (long long)n,
                                      (long long)k, status_text(status).c_str());
  }

 private:
  using CreateFn = int (*)(void**);
  using DestroyFn = int (*)(void*);
  using SetStreamFn = int (*)(void*, cudaStream_t);
  using GemmExFn = int (*)(void*, int, int, int, int, int, const void*, const void*, cudaDataType, int,
                           const void*, cudaDataType, int, const void*, void*, cudaDataType, int, int, int);
  using StatusStringFn = const char* (*)(int);

  std::string status_text(int status) const {
    const char* s = status_string_ != nullptr ? status_string_(status) : nullptr;
    return (s != nullptr ? std::string(s) : std::string("cuBLAS status")) + " (" + std::to_string(status) + ")";
  }

  void* lib_ = nullptr;
  void* handle_ = nullptr;
  CreateFn create_ = nullptr;
  DestroyFn destroy_ = nullptr;
  SetStreamFn set_stream_ = nullptr;
  GemmExFn gemm_ex_ = nullptr;
  StatusStringFn status_string_ = nullptr;
};

// ---------------------------------------------------------------- device memory, timing

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit Buffer(size_t n) : bytes(n) {
    if (cudaMalloc(&ptr, bytes) != cudaSuccess) die("cudaMalloc of %zu MiB failed", bytes >> 20);
  }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  char* at(size_t offset) const { return static_cast<char*>(ptr) + offset; }
};

int elem_size(int dtype) { return dtype == PLORA_F32 ? 4 : 2; }
const char* dtype_name(int dtype) { return dtype == PLORA_BF16 ? "bf16" : "f32"; }

uint64_t g_seed_stream = 1;

// Uniform random values in [lo, hi) over the whole buffer, viewed as elements of dtype.
void fill_random(const Buffer& b, int dtype, float lo, float hi, cudaStream_t s) {
  const int64_t n = static_cast<int64_t>(b.bytes / elem_size(dtype));
  PK(plora_cuda_random_fill(b.ptr, dtype, n, 1, n, PLORA_UNIFORM, lo, hi, 1234, g_seed_stream++, s));
}

struct Stats {
  double median = 0, min = 0, max = 0;
  int reps = 0;
};

Stats stats_of(std::vector<float> ms) {
  std::sort(ms.begin(), ms.end());
  Stats st;
  const size_t n = ms.size();
  st.median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  st.min = ms.front();
  st.max = ms.back();
  st.reps = static_cast<int>(n);
  return st;
}

class Timer {
 public:
  Timer(cudaStream_t s, size_t flush_bytes, int max_reps) : stream_(s), flush_(flush_bytes) {
    events_.resize(4 * static_cast<size_t>(max_reps));
    for (cudaEvent_t& e : events_) CK(cudaEventCreate(&e));
  }
  ~Timer() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  // Median etc. of `reps` calls of op, each after an L2 flush, following `warm` untimed calls.
  template <class Op>
  Stats run(Op&& op, int warm, int reps) {
    for (int i = 0; i < warm; ++i) op();
    for (int i = 0; i < reps; ++i) {
      flush();
      CK(cudaEventRecord(events_[2 * i], stream_));
      op();
      CK(cudaEventRecord(events_[2 * i + 1], stream_));
    }
    return stats_of(elapsed(reps, 0, 2));
  }

  // Two ops timed in alternation (a, b, a, b, ...), so that drift of the card hits both alike.
  template <class OpA, class OpB>
  std::pair<Stats, Stats> run_pair(OpA&& a, OpB&& b, int warm, int reps) {
    for (int i = 0; i < warm; ++i) {
      a();
      b();
    }
    for (int i = 0; i < reps; ++i) {
      flush();
      CK(cudaEventRecord(events_[4 * i], stream_));
      a();
      CK(cudaEventRecord(events_[4 * i + 1], stream_));
      flush();
      CK(cudaEventRecord(events_[4 * i + 2], stream_));
      b();
      CK(cudaEventRecord(events_[4 * i + 3], stream_));
    }
    return {stats_of(elapsed(reps, 0, 4)), stats_of(elapsed(reps, 2, 4))};
  }

 private:
  void flush() { CK(cudaMemsetAsync(flush_.ptr, ++salt_ & 0xff, flush_.bytes, stream_)); }

  std::vector<float> elapsed(int reps, int first, int stride) {
    CK(cudaStreamSynchronize(stream_));
    CK(cudaGetLastError());
    std::vector<float> ms(reps);
    for (int i = 0; i < reps; ++i)
      CK(cudaEventElapsedTime(&ms[i], events_[stride * i + first], events_[stride * i + first + 1]));
    return ms;
  }

  cudaStream_t stream_;
  Buffer flush_;
  std::vector<cudaEvent_t> events_;
  int salt_ = 0;
};

// ---------------------------------------------------------------- rows

struct Row {
  Row(std::string n, std::string d, std::string s, std::string b, std::string t)
      : name(std::move(n)), dtype(std::move(d)), shape(std::move(s)), bound(std::move(b)), note(std::move(t)) {}
  std::string name, dtype, shape, bound, note;
  bool skipped = false;
  Stats t;
  double bytes = 0, flops = 0, pct = 0;
  double copy_pct = -1;  // our kernels: % of the copy bandwidth their floor bytes reach
};

struct Ceilings {
  double copy_gbs = 0;           // device copy, bytes read + written per second / 1e9
  double gemm_gflops[2] = {0, 0};  // cuBLAS, index 0: F32, 1: BF16 (the plora dtype codes)
};

std::vector<Row> g_rows;
Ceilings g_ceil;
int64_t g_lora_lowest = -1;  // index of the LoRA kernel row at r <= 16 with the lowest %copy
FILE* g_csv = nullptr;

std::string fmt(const char* f, ...) {
  char buf[256];
  std::va_list args;
  va_start(args, f);
  std::vsnprintf(buf, sizeof buf, f, args);
  va_end(args);
  return buf;
}

void print_header() {
  std::printf("%-24s %-4s %-24s %9s %9s %8s %8s %9s %6s %6s %s\n", "name", "type", "shape", "median_ms", "MB_floor",
              "GFLOP", "GB/s", "GFLOP/s", "%ceil", "%copy", "bound / note");
}

void emit(Row row) {
  if (row.skipped) {
    std::printf("%-24s %-4s %-24s %s\n", row.name.c_str(), row.dtype.c_str(), row.shape.c_str(), row.note.c_str());
  } else {
    const double s = row.t.median * 1e-3;
    const std::string copy = row.copy_pct >= 0 ? fmt("%5.1f%%", row.copy_pct) : std::string("     -");
    std::printf("%-24s %-4s %-24s %9.4f %9.1f %8.2f %8.0f %9.0f %5.1f%% %s %s%s%s\n", row.name.c_str(),
                row.dtype.c_str(), row.shape.c_str(), row.t.median, row.bytes / 1e6, row.flops / 1e9,
                row.bytes / s / 1e9, row.flops / s / 1e9, row.pct, copy.c_str(), row.bound.c_str(),
                row.note.empty() ? "" : "  ", row.note.c_str());
  }
  std::fflush(stdout);
  if (g_csv != nullptr) {
    const double s = row.t.median * 1e-3;
    std::fprintf(g_csv, "%s,%s,%s,%s,%.5f,%.5f,%.5f,%d,%.0f,%.0f,%.2f,%.2f,%.2f,%.2f,%s,\"%s\"\n", row.name.c_str(),
                 row.dtype.c_str(), row.shape.c_str(), row.skipped ? "skipped" : "ok", row.t.median, row.t.min,
                 row.t.max, row.t.reps, row.bytes, row.flops, row.skipped ? 0.0 : row.bytes / s / 1e9,
                 row.skipped ? 0.0 : row.flops / s / 1e9, row.pct, row.copy_pct, row.bound.c_str(), row.note.c_str());
    std::fflush(g_csv);
  }
  g_rows.push_back(std::move(row));
}

// One of our kernels: its floor is the larger of the memory term and the arithmetic term, at
// cuBLAS's fp32 rate (CUDA cores) or, for a kernel on tensor cores, its BF16 rate.
void kernel_row(const std::string& name, int dtype, const std::string& shape, const Stats& t, double bytes,
                double flops, const std::string& note = "", bool tensor_cores = false) {
  Row row{name, dtype_name(dtype), shape, "", note};
  row.t = t;
  row.bytes = bytes;
  row.flops = flops;
  const double mem_ms = bytes / (g_ceil.copy_gbs * 1e9) * 1e3;
  const double rate = g_ceil.gemm_gflops[tensor_cores ? PLORA_BF16 : PLORA_F32];
  const double flop_ms = rate > 0 ? flops / (rate * 1e9) * 1e3 : 0.0;
  row.bound = flop_ms > mem_ms ? (tensor_cores ? "bf16-tc" : "fp32") : "mem";
  row.pct = 100.0 * std::max(mem_ms, flop_ms) / t.median;
  row.copy_pct = 100.0 * mem_ms / t.median;
  emit(std::move(row));
}

// A row of cuBLAS GEMMs (or a sequence dominated by them): % of cuBLAS's rate for the dtype.
void gemm_row(const std::string& name, int dtype, const std::string& shape, const Stats& t, double bytes,
              double flops, const std::string& note = "") {
  Row row{name, dtype_name(dtype), shape, "gemm", note};
  row.t = t;
  row.bytes = bytes;
  row.flops = flops;
  const double rate = g_ceil.gemm_gflops[dtype];
  row.pct = rate > 0 ? 100.0 * flops / (t.median * 1e-3) / 1e9 / rate : 0.0;
  emit(std::move(row));
}

void skipped_row(const std::string& name, int dtype, const std::string& shape, const std::string& why) {
  Row row{name, dtype_name(dtype), shape, "", "skipped: " + why};
  row.skipped = true;
  emit(std::move(row));
}

// ---------------------------------------------------------------- the LoRA layer's buffers

constexpr int64_t kK = 4096, kN = 4096;

// One dtype's buffers, sized for the largest M and r; a given (M, r) views them with the
// augmented leading dimensions K+r and N+r, as LoraLinear does.
struct Arena {
  int dtype, es;
  Buffer xaug, dyaug, dx, y, waug, da, db, a32, b32;
  Arena(int dt, int64_t m, int64_t r)
      : dtype(dt), es(elem_size(dt)),
        xaug(m * (kK + r) * es), dyaug(m * (kN + r) * es), dx(m * kK * es), y(m * kN * es),
        waug((kN + r) * (kK + r) * es), da(r * kK * 4), db(kN * r * 4), a32(r * kK * 4), b32(kN * r * 4) {}
  void randomize(cudaStream_t s) {
    for (const Buffer* b : {&xaug, &dyaug, &dx, &y, &waug}) fill_random(*b, dtype, -1.0f, 1.0f, s);
    for (const Buffer* b : {&da, &db, &a32, &b32}) fill_random(*b, PLORA_F32, -1.0f, 1.0f, s);
  }
};

// Views of an Arena for one (M, r).
struct Layer {
  const Arena& ar;
  int64_t m, r;
  int64_t ldx() const { return kK + r; }
  int64_t ldd() const { return kN + r; }
  int64_t ldw() const { return kK + r; }
  void* x() const { return ar.xaug.ptr; }                            // [M,K] inside [M,K+r]
  void* ss() const { return ar.xaug.at(kK * ar.es); }                // [M,r]: s*S, cols K..K+r
  void* dy() const { return ar.dyaug.ptr; }                          // [M,N] inside [M,N+r]
  void* ds() const { return ar.dyaug.at(kN * ar.es); }               // [M,r]
  void* w() const { return ar.waug.ptr; }                            // [N,K] inside [N+r,K+r]
  void* b() const { return ar.waug.at(kK * ar.es); }                 // [N,r]
  void* a() const { return ar.waug.at(kN * ldw() * ar.es); }         // [r,K]
  float* da() const { return static_cast<float*>(ar.da.ptr); }       // [r,K] fp32, ld K
  float* db() const { return static_cast<float*>(ar.db.ptr); }       // [N,r] fp32, ld r
};

constexpr float kScaling = 2.0f;
constexpr uint64_t kSeed = 42;

void shrink(const Layer& l, float p, cudaStream_t s) {
  PK(plora_cuda_shrink(l.x(), l.ldx(), l.a(), l.ldw(), l.ss(), l.ldx(), l.ar.dtype, l.m, kK, l.r, kScaling, p, kSeed,
                       7, s));
}
// The same shrink with x's rows one element shorter than the augmented ones (K + r - 1, so not
// 16-byte vectors): the CUDA-core path, whatever the dtype and r. Out goes to dx's buffer.
void shrink_odd_ld(const Layer& l, float p, cudaStream_t s) {
  PK(plora_cuda_shrink(l.x(), l.ldx() - 1, l.a(), l.ldw(), l.ar.dx.ptr, l.r, l.ar.dtype, l.m, kK, l.r, kScaling, p,
                       kSeed, 7, s));
}
// Whether the LoRA kernels take their tensor-core path over rows of leading dimension ld (lora.cu:
// BF16 or F16, r >= 16, 16-byte rows, as the augmented layout's are when K + r or N + r is a multiple of 8).
bool on_tensor_cores(const Layer& l, int64_t ld) {
  return (l.ar.dtype == PLORA_BF16 || l.ar.dtype == PLORA_F16) && l.r >= 16 && (ld * l.ar.es) % 16 == 0;
}
void dy_pass(const Layer& l, cudaStream_t s) {
  PK(plora_cuda_dy_pass(l.dy(), l.ldd(), l.b(), l.ldw(), l.ss(), l.ldx(), l.ds(), l.ldd(), l.db(), l.r, l.ar.dtype,
                        l.m, kN, l.r, kScaling, s));
}
// The dY pass with dY's rows one element shorter (the CUDA-core path); dS goes to dx's buffer.
void dy_pass_odd_ld(const Layer& l, cudaStream_t s) {
  PK(plora_cuda_dy_pass(l.dy(), l.ldd() - 1, l.b(), l.ldw(), l.ss(), l.ldx(), l.ar.dx.ptr, l.r, l.db(), l.r,
                        l.ar.dtype, l.m, kN, l.r, kScaling, s));
}
void da_dx(const Layer& l, float p, bool with_dx, cudaStream_t s, int64_t ld_x) {
  PK(plora_cuda_da_dx(l.x(), ld_x, l.ds(), l.ldd(), l.a(), l.ldw(), l.da(), kK, with_dx ? l.ar.dx.ptr : nullptr,
                      kK, l.ar.dtype, l.m, kK, l.r, p, kSeed, 7, s));
}
void da_dx(const Layer& l, float p, bool with_dx, cudaStream_t s) { da_dx(l, p, with_dx, s, l.ldx()); }

// Floors (bytes, FLOPs), each input read once and each output written once. Past a kernel's
// largest rank tile (r = 64 here: 16 ranks on CUDA cores) x is read once per tile, and with
// dropout a bitmap of the mask (m·K/8 bytes) is written by the first tile and read by each later
// one (docs/kernels.md); neither is in the floor, so those rows' %copy counts only x's first read.
double shrink_bytes(double m, double r, int es) { return (m * kK + r * kK + m * r) * es; }
double dy_pass_bytes(double m, double r, int es) { return (m * kN + kN * r + 2 * m * r) * es + 2.0 * kN * r * 4; }
double da_dx_bytes(double m, double r, int es, bool dx) {
  return (m * kK + m * r + r * kK) * es + 2.0 * r * kK * 4 + (dx ? 2.0 * m * kK * es : 0.0);
}

std::string mkr(int64_t m, int64_t k, int64_t r) {
  return fmt("M=%lld K=%lld r=%lld", (long long)m, (long long)k, (long long)r);
}

// ---------------------------------------------------------------- the benchmark

struct Options {
  bool quick = false;
  const char* csv = nullptr;
  int reps = 0, warm = 0;
};

class Bench {
 public:
  Bench(const Options& o, cudaStream_t s, size_t flush_bytes)
      : opt_(o), s_(s), timer_(s, flush_bytes, std::max(o.reps, 50)) {}

  void run() {
    const std::vector<int64_t> ms = opt_.quick ? std::vector<int64_t>{8192} : std::vector<int64_t>{8192, 16384};
    const std::vector<int64_t> rs = opt_.quick ? std::vector<int64_t>{16} : std::vector<int64_t>{8, 16, 64};
    const int64_t max_m = ms.back(), max_r = rs.back() < 16 ? 16 : rs.back();
    Arena bf16(PLORA_BF16, max_m, max_r), f32(PLORA_F32, max_m, max_r);
    bf16.randomize(s_);
    f32.randomize(s_);
    CK(cudaStreamSynchronize(s_));

    std::printf("\n== ceilings\n");
    print_header();
    copy_ceiling();
    cublas_why_ = cublas_.load(s_);
    if (!cublas_why_.empty()) std::printf("cuBLAS unavailable: %s\n", cublas_why_.c_str());
    gemm_ceiling(bf16);
    gemm_ceiling(f32);

    for (Arena* ar : {&bf16, &f32}) {
      std::printf("\n== kernels, %s (x, dY, W, A, B stored in %s; dA, dB fp32)\n", dtype_name(ar->dtype),
                  dtype_name(ar->dtype));
      print_header();
      for (int64_t m : ms)
        for (int64_t r : rs) lora_kernels(Layer{*ar, m, r}, r == 16);
      merge_rows(*ar, rs);
      adamw_rows(*ar, rs);
      decode_attention_rows(ar->dtype);
      model_op_rows(ar->dtype);
    }

    for (int dtype : {PLORA_BF16, PLORA_F32}) {
      std::printf("\n== bandwidth kernels, %s: row walks with 16-byte packs (docs/kernels.md, target >= 90%% copy)\n",
                  dtype_name(dtype));
      print_header();
      bandwidth_rows(dtype);
    }
    std::printf("\n== bandwidth kernels: merge, GELU, random fills, dropout mask, cross-entropy (runs of eight)\n");
    print_header();
    for (int dtype : {PLORA_BF16, PLORA_F32}) run_kernel_rows(dtype);

    std::printf("\n== LoRA layer step vs the base GEMMs (M=8192 K=N=4096 r=16)\n");
    print_header();
    for (Arena* ar : {&bf16, &f32}) layer_step(Layer{*ar, 8192, 16});
  }

  const std::vector<std::pair<std::string, double>>& ratios() const { return ratios_; }

 private:
  int warm(int deflt) const { return opt_.warm > 0 ? opt_.warm : (opt_.quick ? 2 : deflt); }
  int reps(int deflt) const { return opt_.reps > 0 ? opt_.reps : (opt_.quick ? 10 : deflt); }

  void copy_ceiling() {
    const size_t bytes = opt_.quick ? (size_t(512) << 20) : (size_t(1) << 30);
    Buffer src(bytes), dst(bytes);
    fill_random(src, PLORA_F32, -1.0f, 1.0f, s_);
    Stats t = timer_.run([&] { CK(cudaMemcpyAsync(dst.ptr, src.ptr, bytes, cudaMemcpyDeviceToDevice, s_)); },
                         warm(3), reps(20));
    g_ceil.copy_gbs = 2.0 * bytes / (t.median * 1e-3) / 1e9;
    Row row{"copy_d2d (ceiling)", "byte", fmt("%zu MiB", bytes >> 20), "mem", "bytes read + written"};
    row.t = t;
    row.bytes = 2.0 * bytes;
    row.pct = 100.0;
    emit(std::move(row));
  }

  void gemm_ceiling(const Arena& ar) {
    const int64_t m = 8192;
    const std::string shape = fmt("M=%lld N=%lld K=%lld", (long long)m, (long long)kN, (long long)kK);
    if (!cublas_.ready()) {
      skipped_row("gemm_cublas (ceiling)", ar.dtype, shape, cublas_why_);
      return;
    }
    // y [M,N] = x [M,K] * W[N,K]^T on plain (ld = K) views of the arena.
    Stats t = timer_.run(
        [&] { cublas_.gemm(false, ar.xaug.ptr, kK, true, ar.waug.ptr, kK, ar.y.ptr, kN, ar.dtype, m, kN, kK, 0.0f); },
        warm(3), reps(ar.dtype == PLORA_F32 ? 20 : 30));
    const double flops = 2.0 * m * kN * kK;
    g_ceil.gemm_gflops[ar.dtype] = flops / (t.median * 1e-3) / 1e9;
    gemm_row("gemm_cublas (ceiling)", ar.dtype, shape, t, (m * kK + kN * kK + m * kN) * double(ar.es), flops,
             "fp32 compute");
  }

  void lora_kernels(const Layer& l, bool with_dropout_variants) {
    const int es = l.ar.es, dt = l.ar.dtype;
    const double m = double(l.m), r = double(l.r);
    const std::string shape_k = mkr(l.m, kK, l.r), shape_n = fmt("M=%lld N=%lld r=%lld", (long long)l.m,
                                                                (long long)kN, (long long)l.r);
    const int w = warm(3), n = reps(30);
    auto note_lowest = [&] {
      const int64_t last = int64_t(g_rows.size()) - 1;
      if (l.r <= 16 && (g_lora_lowest < 0 || g_rows[last].copy_pct < g_rows[g_lora_lowest].copy_pct))
        g_lora_lowest = last;
    };
    const bool tc = on_tensor_cores(l, l.ldx()), tc_dy = on_tensor_cores(l, l.ldd());
    for (float p : {0.0f, 0.1f}) {
      if (p > 0 && !with_dropout_variants) continue;
      Stats t = timer_.run([&] { shrink(l, p, s_); }, w, n);
      kernel_row(p > 0 ? "shrink p=0.1" : "shrink", dt, shape_k, t, shrink_bytes(m, r, es), 2 * m * kK * r,
                 tc ? "tensor cores" : "", tc);
      note_lowest();
      if (tc) {  // the CUDA-core path on the same shape, for the ratio
        t = timer_.run([&] { shrink_odd_ld(l, p, s_); }, w, n);
        kernel_row(p > 0 ? "shrink odd-ld p=0.1" : "shrink odd-ld", dt, shape_k, t, shrink_bytes(m, r, es),
                   2 * m * kK * r, "CUDA cores (x rows not 16-byte)");
      }
    }
    {
      Stats t = timer_.run([&] { dy_pass(l, s_); }, w, n);
      kernel_row("dy_pass", dt, shape_n, t, dy_pass_bytes(m, r, es), 4 * m * kN * r, tc_dy ? "tensor cores" : "",
                 tc_dy);
      note_lowest();
      if (tc_dy) {
        t = timer_.run([&] { dy_pass_odd_ld(l, s_); }, w, n);
        kernel_row("dy_pass odd-ld", dt, shape_n, t, dy_pass_bytes(m, r, es), 4 * m * kN * r,
                   "CUDA cores (dY rows not 16-byte)");
      }
    }
    for (bool with_dx : {false, true})
      for (float p : {0.0f, 0.1f}) {
        Stats t = timer_.run([&] { da_dx(l, p, with_dx, s_); }, w, n);
        std::string name = std::string(with_dx ? "da_dx+dx" : "da_dx") + (p > 0 ? " p=0.1" : "");
        kernel_row(name, dt, shape_k, t, da_dx_bytes(m, r, es, with_dx), (with_dx ? 4 : 2) * m * kK * r,
                   tc ? "tensor cores" : "", tc);
        note_lowest();
        if (tc) {
          t = timer_.run([&] { da_dx(l, p, with_dx, s_, l.ldx() - 1); }, w, n);
          kernel_row(name + " odd-ld", dt, shape_k, t, da_dx_bytes(m, r, es, with_dx), (with_dx ? 4 : 2) * m * kK * r,
                     "CUDA cores (x rows not 16-byte)");
        }
      }
  }

  // W [N,K] (inside W_aug, the layer's dtype) += c * B A from fp32 masters A, B, as unloading does.
  void merge_rows(const Arena& ar, const std::vector<int64_t>& rs) {
    struct Variant {
      const char* name;
      int rounding;
      float scale;  // of A and B after the merge (momentum unloading: 1 - m)
    };
    std::vector<Variant> variants{{"merge nearest", PLORA_ROUND_NEAREST, 1.0f}};
    if (ar.dtype == PLORA_BF16) variants.push_back({"merge stochastic", PLORA_ROUND_STOCHASTIC, 1.0f});
    const int rounding16 = ar.dtype == PLORA_BF16 ? PLORA_ROUND_STOCHASTIC : PLORA_ROUND_NEAREST;
    for (int64_t r : rs) {
      std::vector<Variant> vs = variants;
      if (r == 16) vs.push_back({"merge momentum", rounding16, 0.9f});
      for (const Variant& v : vs) {
        const int64_t ldw = kK + r;
        uint64_t unload = 0;
        Stats t = timer_.run(
            [&] {
              PK(plora_cuda_merge(ar.waug.ptr, ar.dtype, ldw, ar.b32.ptr, r, ar.a32.ptr, kK, PLORA_F32, kN, kK, r,
                                  1e-3f, v.rounding, kSeed, unload++, v.scale, v.scale, s_));
            },
            warm(3), reps(30));
        const double ab = double(kN * r + r * kK) * 4;
        const double bytes = 2.0 * kN * kK * ar.es + ab + (v.scale != 1.0f ? ab : 0.0);
        kernel_row(v.name, ar.dtype, fmt("N=%lld K=%lld r=%lld", (long long)kN, (long long)kK, (long long)r), t,
                   bytes, 2.0 * kN * kK * r, "A,B fp32");
      }
    }
    // The momentum variant shrank A and B (0.9 per call): refresh them for later rows.
    fill_random(ar.a32, PLORA_F32, -1.0f, 1.0f, s_);
    fill_random(ar.b32, PLORA_F32, -1.0f, 1.0f, s_);
  }

  // The kernels rewritten as runs of eight elements per thread (docs/kernels.md, "Bandwidth kernels"):
  // each floor is every input read once and every output written once; %copy is the fraction of
  // the copy bandwidth those bytes reach (targets: >= 85% for the merge at r <= 16, >= 90% for the
  // elementwise ones). Activations at the model's shape: 16384 tokens of 14336 (GELU) or 4096
  // (fills, mask); the losses (the head's and the classifier's) on narrow rows (a warp per row) and
  // on the vocabulary (a block per row), the gradient into its own buffer.
  void run_kernel_rows(int dtype) {
    constexpr int64_t kT = 16384, kI = 14336, kH = 4096, kV = 128256, kChunk = 4096, kNarrowRows = 65536,
                      kNarrow = 1000;
    const int es = elem_size(dtype);
    const std::string act = fmt("T=%lld cols=%lld", (long long)kT, (long long)kH);
    for (int64_t r : {4, 16}) {  // W [N,K] += c B A with fp32 A, B; stochastic rounding where W is bf16
      Buffer w(kN * kK * es), a(r * kK * 4), b(kN * r * 4);
      fill_random(w, dtype, -1.0f, 1.0f, s_);
      fill_random(a, PLORA_F32, -1.0f, 1.0f, s_);
      fill_random(b, PLORA_F32, -1.0f, 1.0f, s_);
      const int rounding = dtype == PLORA_BF16 ? PLORA_ROUND_STOCHASTIC : PLORA_ROUND_NEAREST;
      uint64_t unload = 0;
      Stats t = timer_.run([&] { PK(plora_cuda_merge(w.ptr, dtype, kK, b.ptr, r, a.ptr, kK, PLORA_F32, kN, kK, r, 1e-3f,
                                                     rounding, kSeed, unload++, 1.0f, 1.0f, s_)); },
                           warm(3), reps(30));
      kernel_row(rounding == PLORA_ROUND_STOCHASTIC ? "merge stochastic (runs)" : "merge nearest (runs)", dtype,
                 fmt("N=%lld K=%lld r=%lld", (long long)kN, (long long)kK, (long long)r), t,
                 2.0 * kN * kK * es + double(kN * r + r * kK) * 4, 2.0 * kN * kK * r, "A,B fp32");
    }
    {
      Buffer x(kT * kI * es), y(kT * kI * es), dy(kT * kI * es);
      for (const Buffer* bf : {&x, &y, &dy}) fill_random(*bf, dtype, -4.0f, 4.0f, s_);
      const std::string shape = fmt("T=%lld cols=%lld", (long long)kT, (long long)kI);
      Stats t = timer_.run([&] { PK(plora_cuda_gelu(x.ptr, kI, y.ptr, kI, dtype, kT, kI, s_)); }, warm(3), reps(20));
      kernel_row("gelu", dtype, shape, t, 2.0 * kT * kI * es, 0);
      t = timer_.run([&] { PK(plora_cuda_gelu_backward(x.ptr, kI, dy.ptr, kI, y.ptr, kI, dtype, kT, kI, s_)); },
                     warm(3), reps(20));
      kernel_row("gelu_backward", dtype, shape, t, 3.0 * kT * kI * es, 0);
    }
    {
      Buffer out(kT * kH * es);
      uint64_t stream_id = 0;
      for (int distribution : {PLORA_UNIFORM, PLORA_NORMAL}) {
        Stats t = timer_.run([&] { PK(plora_cuda_random_fill(out.ptr, dtype, kH, kT, kH, distribution, -1.0f, 1.0f,
                                                             kSeed, stream_id++, s_)); }, warm(3), reps(20));
        kernel_row(distribution == PLORA_UNIFORM ? "random_fill uniform" : "random_fill normal", dtype, act, t,
                   double(kT) * kH * es, 0);
      }
      Stats t = timer_.run([&] { PK(plora_cuda_dropout_mask(out.ptr, dtype, kH, kT, kH, 0.1f, kSeed, stream_id++,
                                                            s_)); }, warm(3), reps(20));
      kernel_row("dropout_mask p=0.1", dtype, act, t, double(kT) * kH * es, 0);
    }
    const std::pair<int64_t, int64_t> losses[] = {{kNarrowRows, kNarrow}, {kChunk, kV}};
    for (const auto& [rows, vocab] : losses) {
      std::vector<int32_t> targets(rows);
      for (int64_t i = 0; i < rows; i++) targets[i] = i % 9 == 0 ? -100 : static_cast<int32_t>((i * 104729) % vocab);
      Buffer logits(rows * vocab * es), dlogits(rows * vocab * es), d_targets(rows * 4), scratch(PLORA_CUDA_SCRATCH_BYTES);
      CK(cudaMemcpy(d_targets.ptr, targets.data(), rows * 4, cudaMemcpyHostToDevice));
      fill_random(logits, dtype, -4.0f, 4.0f, s_);
      double loss = 0;
      int64_t counted = 0, bad = 0;
      Stats t = timer_.run([&] { PK(plora_cuda_cross_entropy(logits.ptr, vocab, dtype, rows, vocab,
                                                              static_cast<const int32_t*>(d_targets.ptr), 1, -100,
                                                              1.0f, &loss, &counted, dlogits.ptr, vocab, &bad,
                                                              scratch.ptr, s_)); }, warm(2), reps(10));
      kernel_row(vocab <= 4096 ? "cross_entropy (warp rows)" : "cross_entropy (block rows)", dtype,
                 fmt("rows=%lld vocab=%lld", (long long)rows, (long long)vocab), t, 2.0 * rows * vocab * es, 0,
                 "dlogits out of place");
      // the classifier loss over the same rows (labels as floats, every row counted): the same row kernel
      std::vector<float> labels(rows);
      for (int64_t i = 0; i < rows; i++) labels[i] = static_cast<float>((i * 104729) % vocab);
      Buffer d_labels(rows * 4);
      CK(cudaMemcpy(d_labels.ptr, labels.data(), rows * 4, cudaMemcpyHostToDevice));
      t = timer_.run([&] { PK(plora_cuda_softmax_xent(logits.ptr, vocab, dtype, rows, vocab,
                                                       static_cast<const float*>(d_labels.ptr), &loss, dlogits.ptr,
                                                       vocab, &bad, scratch.ptr, s_)); }, warm(2), reps(10));
      kernel_row(vocab <= 4096 ? "softmax_xent (warp rows)" : "softmax_xent (block rows)", dtype,
                 fmt("rows=%lld cols=%lld", (long long)rows, (long long)vocab), t, 2.0 * rows * vocab * es, 0,
                 "dlogits out of place; includes the result's copy back");
    }
  }

  // One decoding step of a Llama-3-8B-shaped layer (32 query heads over 8 kv heads of 128) against
  // caches of `len` positions, and a prefill-sized block of 16 new tokens: memory-bound, each cache
  // row read once at the floor.
  // The kernels of a Llama-family model at an 8B-class shape on one H200: hidden 4096, 32/8 heads
  // of 128, intermediate 14336, vocabulary 128256, 16384 tokens a step (4 documents of 4096); the
  // head's loss on one chunk of 4096 rows. Bytes are what each must move; attention is compared
  // with cuBLAS's GEMM rate for the dtype (its target: 300 TFLOP/s forward at head_dim 128).
  void model_op_rows(int dtype) {
    constexpr int64_t kT = 16384, kDoc = 4096, kH = 4096, kI = 14336, kV = 128256, kChunk = 4096;
    constexpr int kHeads = 32, kKv = 8, kD = 128;
    const int es = elem_size(dtype);
    const int64_t q_cols = int64_t{kHeads} * kD, kv_cols = int64_t{kKv} * kD;
    std::vector<int32_t> ids(kT), pos(kT), start(kT), targets(kChunk);
    for (int64_t t = 0; t < kT; t++) {
      ids[t] = static_cast<int32_t>((t * 7919) % kV);
      pos[t] = static_cast<int32_t>(t % kDoc);
      start[t] = static_cast<int32_t>(t - t % kDoc);
    }
    for (int64_t t = 0; t < kChunk; t++) targets[t] = t % 9 == 0 ? -100 : static_cast<int32_t>((t * 104729) % kV);
    Buffer d_ids(kT * 4), d_pos(kT * 4), d_start(kT * 4), d_targets(kChunk * 4), scratch(PLORA_CUDA_SCRATCH_BYTES);
    CK(cudaMemcpy(d_ids.ptr, ids.data(), kT * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_pos.ptr, pos.data(), kT * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_start.ptr, start.data(), kT * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_targets.ptr, targets.data(), kChunk * 4, cudaMemcpyHostToDevice));
    const auto* id32 = static_cast<const int32_t*>(d_ids.ptr);
    const auto* pos32 = static_cast<const int32_t*>(d_pos.ptr);
    const auto* start32 = static_cast<const int32_t*>(d_start.ptr);
    int64_t bad = 0, counted = 0;
    double loss = 0;
    {  // embedding: gather forward, fp32 scatter-add backward (full fine-tuning)
      Buffer table(kV * kH * es), out(kT * kH * es), dtable(kV * kH * 4);
      fill_random(table, dtype, -1.0f, 1.0f, s_);
      fill_random(out, dtype, -1.0f, 1.0f, s_);
      Stats t = timer_.run([&] { PK(plora_cuda_embedding(id32, 1, table.ptr, kH, dtype, out.ptr, kH, dtype, kT, kV,
                                                          kH, &bad, scratch.ptr, s_)); }, warm(3), reps(20));
      kernel_row("embedding", dtype, fmt("T=%lld dim=%lld", (long long)kT, (long long)kH), t, 2.0 * kT * kH * es, 0);
      t = timer_.run([&] { PK(plora_cuda_embedding_backward(id32, 1, out.ptr, kH, dtype,
                                                             static_cast<float*>(dtable.ptr), kH, kT, kV, kH, &bad,
                                                             scratch.ptr, s_)); }, warm(3), reps(20));
      kernel_row("embedding_backward", dtype, fmt("T=%lld dim=%lld", (long long)kT, (long long)kH), t,
                 kT * kH * (es + 8.0), 0);
    }
    {  // RMSNorm over the hidden size, and its backward (dx, dweight)
      Buffer x(kT * kH * es), w(kH * es), y(kT * kH * es), rstd(kT * 4), dw(kH * 4);
      for (const Buffer* b : {&x, &w, &y}) fill_random(*b, dtype, -1.0f, 1.0f, s_);
      Stats t = timer_.run([&] { PK(plora_cuda_rmsnorm(x.ptr, kH, w.ptr, y.ptr, kH, static_cast<float*>(rstd.ptr),
                                                        dtype, kT, kH, 1e-5f, s_)); }, warm(3), reps(20));
      kernel_row("rmsnorm", dtype, fmt("T=%lld cols=%lld", (long long)kT, (long long)kH), t, 2.0 * kT * kH * es, 0);
      t = timer_.run([&] { PK(plora_cuda_rmsnorm_backward(x.ptr, kH, w.ptr, static_cast<const float*>(rstd.ptr),
                                                           y.ptr, kH, y.ptr, kH, static_cast<float*>(dw.ptr), dtype,
                                                           kT, kH, s_)); }, warm(3), reps(20));
      kernel_row("rmsnorm_backward", dtype, fmt("T=%lld cols=%lld", (long long)kT, (long long)kH), t,
                 3.0 * kT * kH * es, 0);
    }
    {  // RoPE in place on q, a position per token
      Buffer q(kT * q_cols * es), inv(kD / 2 * 4);
      fill_random(q, dtype, -1.0f, 1.0f, s_);
      fill_random(inv, PLORA_F32, 0.0f, 1.0f, s_);
      Stats t = timer_.run([&] { PK(plora_cuda_rope(q.ptr, q_cols, dtype, kT, kHeads, kD, pos32, 1,
                                                     static_cast<const float*>(inv.ptr), s_)); }, warm(3), reps(20));
      kernel_row("rope", dtype, fmt("T=%lld H=32 D=128", (long long)kT), t, 2.0 * kT * q_cols * es, 0);
    }
    {  // SwiGLU over the intermediate size, and its backward
      Buffer gate(kT * kI * es), up(kT * kI * es), h(kT * kI * es);
      for (const Buffer* b : {&gate, &up}) fill_random(*b, dtype, -1.0f, 1.0f, s_);
      Stats t = timer_.run([&] { PK(plora_cuda_swiglu(gate.ptr, kI, up.ptr, kI, h.ptr, kI, dtype, kT, kI, s_)); },
                           warm(3), reps(20));
      kernel_row("swiglu", dtype, fmt("T=%lld cols=%lld", (long long)kT, (long long)kI), t, 3.0 * kT * kI * es, 0);
      Buffer dgate(kT * kI * es), dup(kT * kI * es);
      t = timer_.run([&] { PK(plora_cuda_swiglu_backward(gate.ptr, kI, up.ptr, kI, h.ptr, kI, dgate.ptr, kI, dup.ptr,
                                                          kI, dtype, kT, kI, s_)); }, warm(3), reps(20));
      kernel_row("swiglu_backward", dtype, fmt("T=%lld cols=%lld", (long long)kT, (long long)kI), t,
                 5.0 * kT * kI * es, 0);
    }
    {  // the head's cross-entropy on one chunk of rows, the gradient replacing the logits
      Buffer logits(kChunk * kV * es);
      fill_random(logits, dtype, -4.0f, 4.0f, s_);
      Stats t = timer_.run([&] { PK(plora_cuda_cross_entropy(logits.ptr, kV, dtype, kChunk, kV,
                                                              static_cast<const int32_t*>(d_targets.ptr), 1, -100,
                                                              1.0f, &loss, &counted, logits.ptr, kV, &bad,
                                                              scratch.ptr, s_)); }, warm(2), reps(10));
      kernel_row("cross_entropy", dtype, fmt("rows=%lld vocab=%lld", (long long)kChunk, (long long)kV), t,
                 2.0 * kChunk * kV * es, 0);
    }
    {  // causal attention over 4 documents of 4096, forward and backward (FlashAttention-2 style)
      Buffer q(kT * q_cols * es), k(kT * kv_cols * es), v(kT * kv_cols * es), out(kT * q_cols * es), lse(kT * kHeads * 4);
      Buffer dq(kT * q_cols * es), dk(kT * kv_cols * es), dv(kT * kv_cols * es);
      for (const Buffer* b : {&q, &k, &v}) fill_random(*b, dtype, -1.0f, 1.0f, s_);
      const double flops = (kT / kDoc) * 2.0 * kDoc * kDoc * kD * kHeads;  // 4·T²·D·H, halved by the mask
      const float scale = 0.08838835f;
      Stats t = timer_.run([&] { PK(plora_cuda_attention_forward(q.ptr, q_cols, k.ptr, kv_cols, v.ptr, kv_cols,
                                                                  start32, dtype, kT, kHeads, kKv, kD, scale, out.ptr,
                                                                  q_cols, static_cast<float*>(lse.ptr), kHeads, &bad,
                                                                  scratch.ptr, s_)); }, warm(2), reps(10));
      gemm_row("attention_forward", dtype, "T=16384 (4x4096) H=32/8 D=128", t, 0, flops);
      t = timer_.run([&] { PK(plora_cuda_attention_backward(q.ptr, q_cols, k.ptr, kv_cols, v.ptr, kv_cols, out.ptr,
                                                             q_cols, out.ptr, q_cols, static_cast<const float*>(lse.ptr),
                                                             kHeads, start32, dtype, kT, kHeads, kKv, kD, scale, dq.ptr,
                                                             q_cols, dk.ptr, kv_cols, dv.ptr, kv_cols, &bad, scratch.ptr,
                                                             s_)); }, warm(2), reps(10));
      gemm_row("attention_backward", dtype, "T=16384 (4x4096) H=32/8 D=128", t, 0, 2.5 * flops);
    }
  }

  void decode_attention_rows(int dtype) {
    constexpr int kHeads = 32, kKvHeads = 8, kDim = 128;
    const int es = elem_size(dtype);
    const std::vector<int64_t> lens = opt_.quick ? std::vector<int64_t>{4096} : std::vector<int64_t>{512, 4096, 32768};
    for (int64_t len : lens) {
      const int64_t kv_cols = int64_t{kKvHeads} * kDim, q_cols = int64_t{kHeads} * kDim;
      Buffer k(len * kv_cols * es), v(len * kv_cols * es), q(16 * q_cols * es), out(16 * q_cols * es);
      for (const Buffer* b : {&k, &v, &q}) fill_random(*b, dtype, -1.0f, 1.0f, s_);
      for (int64_t n : {int64_t{1}, int64_t{16}}) {
        const int64_t past = len - n;
        Stats t = timer_.run(
            [&] {
              PK(plora_cuda_decode_attention(q.ptr, q_cols, k.ptr, kv_cols, v.ptr, kv_cols, dtype, n, past, kHeads,
                                             kKvHeads, kDim, 0.088f, out.ptr, q_cols, s_));
            },
            warm(3), reps(30));
        const double bytes = (2.0 * len * kv_cols + 2.0 * n * q_cols) * es;
        kernel_row("decode_attention", dtype, fmt("n=%lld len=%lld H=32/8 D=128", (long long)n, (long long)len), t,
                   bytes, 4.0 * n * len * q_cols);
      }
    }
  }

  // The elementwise kernels and reductions over T x H = 16384 x 4096 (64 Mi elements): floors
  // of each input read once and each output written once; "+1" rows start every operand one
  // element past an aligned address (a scalar head, then the same packs), "ld+8" rows walk the
  // matrix row by row (a head per row where 8 elements are not a whole number of 16 bytes).
  void bandwidth_rows(int dtype) {
    constexpr int64_t kT = 16384, kH = 4096;
    const int es = elem_size(dtype), other = dtype == PLORA_F32 ? PLORA_BF16 : PLORA_F32;
    const int eo = elem_size(other);
    const double n = double(kT) * kH;
    const int64_t ld8 = kH + 8;
    Buffer a((kT * ld8 + 8) * 4), b((kT * ld8 + 8) * 4), bias(kH * 4), scratch(PLORA_CUDA_SCRATCH_BYTES), counter(8);
    fill_random(a, dtype, -1.0f, 1.0f, s_);
    fill_random(b, other, -1.0f, 1.0f, s_);
    fill_random(bias, dtype, -1.0f, 1.0f, s_);
    const std::string shape = fmt("%lldx%lld", (long long)kT, (long long)kH);
    const int w = warm(3), r = reps(20);
    for (int64_t offset : {0, 1}) {
      const std::string tag = offset ? " +1" : "";
      Stats t = timer_.run([&] { PK(plora_cuda_copy(a.at(offset * es), dtype, kH, b.at(offset * eo), other, kH, kT, kH,
                                                    s_)); }, w, r);
      kernel_row("copy to " + std::string(dtype_name(other)) + tag, dtype, shape, t, n * (es + eo), 0);
      t = timer_.run([&] { PK(plora_cuda_axpby(0.5f, b.at(offset * eo), other, kH, 0.25f, a.at(offset * es), dtype, kH,
                                               kT, kH, s_)); }, w, r);
      kernel_row("axpby" + tag, dtype, shape, t, n * (eo + 2 * es), 2 * n, "x " + std::string(dtype_name(other)));
    }
    Stats t = timer_.run([&] { PK(plora_cuda_copy(a.ptr, dtype, ld8, b.ptr, other, ld8, kT, kH, s_)); }, w, r);
    kernel_row("copy to " + std::string(dtype_name(other)) + " ld+8", dtype, shape, t, n * (es + eo), 0);
    t = timer_.run([&] { PK(plora_cuda_fill(a.ptr, dtype, kH, kT, kH, 0.5f, s_)); }, w, r);
    kernel_row("fill", dtype, shape, t, n * es, 0);
    t = timer_.run([&] { PK(plora_cuda_axpby(0.5f, b.ptr, other, kH, 0.0f, a.ptr, dtype, kH, kT, kH, s_)); }, w, r);
    kernel_row("axpby beta=0", dtype, shape, t, n * (eo + es), n, "y not read");
    t = timer_.run([&] { PK(plora_cuda_add_bias(a.ptr, dtype, kH, kT, kH, bias.ptr, dtype, s_)); }, w, r);
    kernel_row("add_bias", dtype, shape, t, 2 * n * es + kH * es, n);
    double sum = 0;
    int64_t count = 0;
    t = timer_.run([&] { PK(plora_cuda_sum_squares(a.ptr, dtype, kH, kT, kH, &sum, scratch.ptr, s_)); }, w, r);
    kernel_row("sum_squares", dtype, shape, t, n * es, 2 * n, "fp64 sums; includes the result's copy back");
    t = timer_.run([&] { PK(plora_cuda_sum_squares(a.at(es), dtype, kH, kT, kH, &sum, scratch.ptr, s_)); }, w, r);
    kernel_row("sum_squares +1", dtype, shape, t, n * es, 2 * n, "fp64 sums; includes the result's copy back");
    t = timer_.run([&] { PK(plora_cuda_sum_squares(a.ptr, dtype, ld8, kT, kH, &sum, scratch.ptr, s_)); }, w, r);
    kernel_row("sum_squares ld+8", dtype, shape, t, n * es, 2 * n, "fp64 sums; includes the result's copy back");
    t = timer_.run([&] { PK(plora_cuda_count_nonfinite(a.ptr, dtype, kH, kT, kH, counter.ptr, &count, s_)); }, w, r);
    kernel_row("count_nonfinite", dtype, shape, t, n * es, 0, "includes the result's copy back");
  }

  // One fused AdamW call over fp32 masters, with compute-dtype copies refreshed in the same pass:
  // 3 LoRA layers' A [r,K] and B [N,r] (copies inside W_aug-like buffers), and 3 full W [N,K].
  void adamw_rows(const Arena& ar, const std::vector<int64_t>& rs) {
    for (int64_t r : rs) adamw_row(ar, "adamw lora 3x(A,B)", {r, kN, r, kN, r, kN}, {kK, r, kK, r, kK, r}, r);
    adamw_row(ar, "adamw full 3xW", {kN, kN, kN}, {kK, kK, kK}, 0);
  }

  void adamw_row(const Arena& ar, const char* name, const std::vector<int64_t>& rows, const std::vector<int64_t>& cols,
                 int64_t r) {
    const int count = static_cast<int>(rows.size());
    int64_t total = 0;
    for (int i = 0; i < count; ++i) total += rows[i] * cols[i];
    Buffer p(total * 4), g(total * 4), m(total * 4), v(total * 4), table(9 * 8 * count);
    fill_random(p, PLORA_F32, -1.0f, 1.0f, s_);
    fill_random(g, PLORA_F32, -1.0f, 1.0f, s_);
    fill_random(m, PLORA_F32, -0.1f, 0.1f, s_);
    fill_random(v, PLORA_F32, 0.0f, 0.01f, s_);  // second moments are >= 0
    // Copies: LoRA A / B live in W_aug [N+r,K+r] of each layer (ld K+r); full W copies are plain.
    const int64_t copy_ld = r > 0 ? kK + r : kK;
    const int64_t copy_elems = r > 0 ? (kN + r) * (kK + r) : kN * kK;
    const int layers = r > 0 ? count / 2 : count;
    Buffer copy(size_t(layers) * copy_elems * ar.es);
    std::vector<int64_t> ps(count), gs(count), mv(count), vs(count), cs(count), lds(count, copy_ld);
    std::vector<float> lr_scale(count, 1.0f);
    int64_t offset = 0;
    for (int i = 0; i < count; ++i) {
      ps[i] = reinterpret_cast<int64_t>(p.at(offset * 4));
      gs[i] = reinterpret_cast<int64_t>(g.at(offset * 4));
      mv[i] = reinterpret_cast<int64_t>(m.at(offset * 4));
      vs[i] = reinterpret_cast<int64_t>(v.at(offset * 4));
      offset += rows[i] * cols[i];
      const int layer = r > 0 ? i / 2 : i;
      size_t at = size_t(layer) * copy_elems;
      if (r > 0 && i % 2 == 0) at += size_t(kN) * copy_ld;  // A: rows N.. of W_aug
      if (r > 0 && i % 2 == 1) at += size_t(kK);            // B: cols K.. of W_aug
      cs[i] = reinterpret_cast<int64_t>(copy.at(at * ar.es));
    }
    const float bc1 = 1.0f - std::pow(0.9f, 10.0f), bc2 = 1.0f - std::pow(0.999f, 10.0f);
    Stats t = timer_.run(
        [&] {
          PK(plora_cuda_adamw(count, ps.data(), gs.data(), mv.data(), vs.data(), cs.data(), lds.data(), rows.data(),
                              cols.data(), lr_scale.data(), ar.dtype, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, bc1, bc2,
                              table.ptr, int64_t(table.bytes), s_));
        },
        warm(3), reps(30));
    // Reads p, g, m, v; writes p, m, v and the copy. FLOPs: ~18 per element (nominal).
    const double n = double(total);
    const std::string shape = r > 0 ? fmt("%d x %lld el, r=%lld", count, (long long)(total / count), (long long)r)
                                    : fmt("%d x %lldx%lld", count, (long long)kN, (long long)kK);
    kernel_row(name, ar.dtype, shape, t, n * (7 * 4 + ar.es), 18 * n, r > 0 ? "small: latency-bound" : "");
  }

  void layer_step(const Layer& l) {
    const int dt = l.ar.dtype;
    const double m = double(l.m), r = double(l.r), es = l.ar.es;
    const std::string shape = fmt("M=%lld K=N=%lld r=%lld", (long long)l.m, (long long)kK, (long long)l.r);
    if (!cublas_.ready()) {
      skipped_row("base_gemms", dt, shape, cublas_why_);
      skipped_row("lora_layer_step", dt, shape, cublas_why_);
      return;
    }
    const Arena& ar = l.ar;
    // Base: y = x W^T and dX = dY W on plain (ld K / ld N) views of the arena.
    auto base = [&] {
      cublas_.gemm(false, ar.xaug.ptr, kK, true, ar.waug.ptr, kK, ar.y.ptr, kN, dt, l.m, kN, kK, 0.0f);
      cublas_.gemm(false, ar.dyaug.ptr, kN, false, ar.waug.ptr, kK, ar.dx.ptr, kK, dt, l.m, kK, kN, 0.0f);
    };
    // LoraLinear's forward + backward on the augmented path, without dropout:
    // shrink into X_aug[:, K:], y = X_aug W_aug[0:N]^T, dy_pass into dY_aug[:, N:],
    // dX = dY_aug W_aug[:, 0:K], da_dx without dx.
    auto layer = [&] {
      shrink(l, 0.0f, s_);
      cublas_.gemm(false, l.x(), l.ldx(), true, l.w(), l.ldw(), ar.y.ptr, kN, dt, l.m, kN, kK + l.r, 0.0f);
      dy_pass(l, s_);
      cublas_.gemm(false, l.dy(), l.ldd(), false, l.w(), l.ldw(), ar.dx.ptr, kK, dt, l.m, kK, kN + l.r, 0.0f);
      da_dx(l, 0.0f, false, s_);
    };
    // The two augmented GEMMs alone: what the layer costs beyond the base GEMMs without our kernels.
    auto aug_gemms = [&] {
      cublas_.gemm(false, l.x(), l.ldx(), true, l.w(), l.ldw(), ar.y.ptr, kN, dt, l.m, kN, kK + l.r, 0.0f);
      cublas_.gemm(false, l.dy(), l.ldd(), false, l.w(), l.ldw(), ar.dx.ptr, kK, dt, l.m, kK, kN + l.r, 0.0f);
    };
    // With dropout the LoRA part of dX needs the mask: dX = dY W by cuBLAS, then da_dx adds it.
    auto layer_dropout = [&] {
      shrink(l, 0.1f, s_);
      cublas_.gemm(false, l.x(), l.ldx(), true, l.w(), l.ldw(), ar.y.ptr, kN, dt, l.m, kN, kK + l.r, 0.0f);
      dy_pass(l, s_);
      cublas_.gemm(false, l.dy(), l.ldd(), false, l.w(), l.ldw(), ar.dx.ptr, kK, dt, l.m, kK, kN, 0.0f);
      da_dx(l, 0.1f, true, s_);
    };
    const int w = warm(3), n = reps(dt == PLORA_F32 ? 20 : 30);
    std::pair<Stats, Stats> tb = timer_.run_pair(base, layer, w, n);
    const double gemm_bytes = 2 * (m * kK + double(kN) * kK + m * kN) * es;
    const double base_flops = 2 * (2 * m * kN * kK);
    gemm_row("base_gemms", dt, shape, tb.first, gemm_bytes, base_flops, "x*W^T + dY*W");
    const double ratio = tb.second.median / tb.first.median;
    const double lora_flops = 2 * m * kN * (kK + r) + 2 * m * kK * (kN + r) + 2 * m * kK * r + 4 * m * kN * r +
                              2 * m * kK * r;
    gemm_row("lora_layer_step", dt, shape, tb.second, gemm_bytes, lora_flops,
             fmt("layer/base %.3f (target <= 1.07)", ratio));
    ratios_.push_back({dtype_name(dt), ratio});
    std::pair<Stats, Stats> ta = timer_.run_pair(base, aug_gemms, w, n);
    const double aug_flops = 2 * m * kN * (kK + r) + 2 * m * kK * (kN + r);
    gemm_row("aug_gemms", dt, shape, ta.second, gemm_bytes, aug_flops,
             fmt("aug/base %.3f: the 2 GEMMs with K+r, N+r alone", ta.second.median / ta.first.median));
    std::pair<Stats, Stats> td = timer_.run_pair(base, layer_dropout, w, n);
    gemm_row("lora_layer_step p=0.1", dt, shape, td.second, gemm_bytes, lora_flops,
             fmt("layer/base %.3f (base %.4f ms in this pairing)", td.second.median / td.first.median,
                 td.first.median));
  }

  Options opt_;
  cudaStream_t s_;
  Timer timer_;
  Cublas cublas_;
  std::string cublas_why_;
  std::vector<std::pair<std::string, double>> ratios_;
};

void usage(FILE* f) {
  std::fprintf(f,
               "usage: plora_cuda_bench [--quick] [--csv FILE] [--reps N] [--warmup N]\n"
               "  --quick     one shape per kernel (M=8192, r=16) and 10 timed runs per row\n"
               "  --csv FILE  also write every row to FILE as CSV\n"
               "  --reps N    timed runs per row (default 30, 20 for the slow F32 GEMM rows; 10 with --quick)\n"
               "  --warmup N  untimed runs before each row (default 3; 2 with --quick)\n"
               "env PLORA_CUBLAS=/path/libcublas.so.13 picks the cuBLAS library to dlopen.\n");
}

int parse_count(const char* flag, const char* value) {
  char* end = nullptr;
  const long n = value != nullptr ? std::strtol(value, &end, 10) : 0;
  if (value == nullptr || *end != '\0' || n < 1 || n > 1000) {
    std::fprintf(stderr, "plora_cuda_bench: %s needs a count in 1..1000\n", flag);
    std::exit(2);
  }
  return static_cast<int>(n);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--csv" && i + 1 < argc) {
      opt.csv = argv[++i];
    } else if (a == "--reps") {
      opt.reps = parse_count("--reps", i + 1 < argc ? argv[++i] : nullptr);
    } else if (a == "--warmup") {
      opt.warm = parse_count("--warmup", i + 1 < argc ? argv[++i] : nullptr);
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  const auto start = std::chrono::steady_clock::now();

  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    std::printf("plora_cuda_bench: no usable CUDA device: %s\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none");
    return 77;
  }
  if (!plora_cuda_compiled()) {
    std::printf("plora_cuda_bench: libplora_cuda is the stub built without nvcc\n");
    return 77;
  }
  CK(cudaSetDevice(0));
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  int driver = 0, runtime = 0;
  CK(cudaDriverGetVersion(&driver));
  CK(cudaRuntimeGetVersion(&runtime));
  const std::string sm = std::to_string(prop.major * 10 + prop.minor);
  const std::string archs = plora_cuda_architectures();
  std::printf("device 0: %s, sm_%s, %d SMs, %.1f MiB L2, %.1f GiB; driver %d, runtime %d; kernels for sm %s%s\n",
              prop.name, sm.c_str(), prop.multiProcessorCount, prop.l2CacheSize / 1048576.0,
              prop.totalGlobalMem / 1073741824.0, driver, runtime, archs.c_str(),
              ("," + archs + ",").find("," + sm + ",") == std::string::npos ? " (no exact match: PTX JIT)" : "");

  if (opt.csv != nullptr) {
    g_csv = std::fopen(opt.csv, "w");
    if (g_csv == nullptr) die("cannot write %s: %s", opt.csv, std::strerror(errno));
    std::fprintf(g_csv, "name,dtype,shape,status,median_ms,min_ms,max_ms,reps,bytes_floor,flops,gb_per_s,"
                        "gflop_per_s,pct_ceiling,pct_copy,bound,note\n");
  }

  cudaStream_t stream = nullptr;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const size_t flush = std::max<size_t>(size_t(256) << 20, 4 * size_t(prop.l2CacheSize));
  std::printf("mode %s; L2 flushed before each timed run (%zu MiB memset); medians of CUDA-event times\n",
              opt.quick ? "quick" : "full", flush >> 20);
  std::vector<std::pair<std::string, double>> ratios;
  {
    Bench bench(opt, stream, flush);
    bench.run();
    ratios = bench.ratios();
  }
  CK(cudaStreamSynchronize(stream));
  CK(cudaStreamDestroy(stream));
  if (g_csv != nullptr) std::fclose(g_csv);

  // Summary: ceilings, the layer/base ratios, and the kernel row farthest from its floor (rows
  // too small to fill the GPU left out).
  int skipped = 0;
  const Row* worst = nullptr;
  const Row* lora = g_lora_lowest >= 0 ? &g_rows[g_lora_lowest] : nullptr;
  for (const Row& row : g_rows) {
    if (row.skipped) ++skipped;
    else if (row.bound != "gemm" && row.name.find("ceiling") == std::string::npos &&
             row.note.rfind("small", 0) != 0 && (worst == nullptr || row.pct < worst->pct))
      worst = &row;
  }
  auto tflops = [](int dtype) {
    return g_ceil.gemm_gflops[dtype] > 0 ? fmt("%.1f TFLOP/s", g_ceil.gemm_gflops[dtype] / 1e3) : std::string("n/a");
  };
  std::string ratio_text;
  bool met = !ratios.empty();
  for (const auto& rt : ratios) {
    ratio_text += fmt(" %s %.3f", rt.first.c_str(), rt.second);
    met = met && rt.second <= 1.07;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("\nsummary: %zu rows (%d skipped) in %.1f s on %s; copy %.0f GB/s; cuBLAS bf16 %s, f32 %s; "
              "layer/base:%s (target <= 1.07: %s); lowest %%ceil: %s; lowest %%copy of the LoRA kernels at r <= 16: %s\n",
              g_rows.size(), skipped, secs, prop.name, g_ceil.copy_gbs, tflops(PLORA_BF16).c_str(),
              tflops(PLORA_F32).c_str(), ratio_text.empty() ? " n/a" : ratio_text.c_str(),
              ratios.empty() ? "not measured" : (met ? "met" : "MISSED"),
              worst ? fmt("%s %s %s %.1f%%", worst->name.c_str(), worst->dtype.c_str(), worst->shape.c_str(),
                          worst->pct).c_str()
                    : "n/a",
              lora ? fmt("%s %s %s %.1f%%", lora->name.c_str(), lora->dtype.c_str(), lora->shape.c_str(),
                         lora->copy_pct).c_str()
                   : "n/a");
  return 0;
}
