#!/usr/bin/env bash
# gpu-check.sh: builds plora's native libraries on a machine with an NVIDIA GPU, runs the native
# GPU tests (plain, under compute-sanitizer memcheck and racecheck), the Java suite's CUDA cases
# when the bundle from scripts/gpu-java-bundle.sh is there (gpu-java/), and the native benchmark,
# and writes a report. Needs CUDA (nvcc, driver) and CMake; no JDK or Maven.
#
#   scripts/gpu-check.sh [--quick] [OUT_DIR]
#
#   OUT_DIR      where the report goes (default: $OUT, else gpu-check-out):
#                  OUT_DIR/summary.md   steps (PASS/FAIL/SKIP, seconds, why) and the benchmark table
#                  OUT_DIR/bench.csv    the benchmark rows as CSV
#                  OUT_DIR/logs/*.log   every step's full output
#                (8 files at most: a remote runner may return no more than that)
#   --quick      the benchmark's quick mode (one shape per kernel, fewer repeats); the rest is the same
#   BUILD_DIR    build folder (default build-gpu, relative to the repository root)
#   GPU_CHECK_BUDGET  seconds the whole script may take (default 470, i.e. under 8 minutes): every
#                step runs under `timeout` with the smaller of its own cap and the time left, and a
#                step with under 15 s left is recorded as SKIP.
#
# Steps: nvidia-smi and nvcc --version (printed, informative); cmake configure (Release,
# PLORA_CUDA_ARCHITECTURES=90, i.e. sm_90 for H100/H200) and build of the native targets only
# (plora_cpu, plora_cuda, test_cpu_kernels, test_cuda_parity, plora_cuda_bench) with all cores;
# ctest, where test_cuda_parity must PASS (its exit 77, "skipped: no usable GPU", is a FAILURE
# here); the JUnit suite from gpu-java/ with -Dplora.test.requireCuda=true, so that a CUDA case
# that cannot run fails instead of skipping (SKIP when there is no bundle); test_cuda_parity under
# compute-sanitizer --tool memcheck and --tool racecheck (SKIP when compute-sanitizer is not on
# PATH or in /usr/local/cuda/bin, or cannot attach to the device, as in some container runtimes);
# plora_cuda_bench (full, or --quick).
# The exit status is 1 when a required step failed (configure, build, ctest, the Java suite when
# bundled, sanitizers when they run, bench), else 0. If libcublas.so.13 is not on the loader's
# path, the script looks in the CUDA toolkit and in Python's nvidia-cublas wheel and passes it to
# the benchmark as PLORA_CUBLAS; the Java suite gets the same folders on LD_LIBRARY_PATH.
#
# On a GPU machine that starts bare, one command from the repository root does it all, the build
# included (the report goes to $OUT when that is set):
#   bash scripts/gpu-check.sh --quick
# For the Java suite, first run `mvn -B verify && scripts/gpu-java-bundle.sh` where a JDK is, and
# copy gpu-java/ (52 MiB) along with the working tree.
# The end of stdout is the benchmark table followed by the step table.
set -u
set -o pipefail

usage() { sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; }

QUICK=0
OUT_DIR=""
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "gpu-check: unknown option $arg" >&2; usage >&2; exit 2 ;;
    *) OUT_DIR=$arg ;;
  esac
done
OUT_DIR=${OUT_DIR:-${OUT:-gpu-check-out}}

mkdir -p "$OUT_DIR/logs" || exit 2
OUT_DIR=$(cd "$OUT_DIR" && pwd) || exit 2   # absolute, relative to the caller's directory
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 2
cd "$ROOT" || exit 2
BUILD_DIR=${BUILD_DIR:-build-gpu}
BUDGET=${GPU_CHECK_BUDGET:-470}
LOGS=$OUT_DIR/logs
rm -f "$LOGS"/*.log "$OUT_DIR/summary.md" "$OUT_DIR/bench.csv"
DEADLINE=$((SECONDS + BUDGET))
JOBS=$(nproc 2>/dev/null || echo 4)

if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

# The loader's cache, listed once (ldconfig may live in /sbin, off a non-root PATH); matched with
# grep on a variable, never `ldconfig -p | grep -q`, whose early exit kills ldconfig under pipefail.
LOADER_CACHE=$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null)
in_loader_cache() { grep -F -- "$1" >/dev/null <<<"$LOADER_CACHE"; }

# Folders that hold the CUDA 13 runtime and cuBLAS when the loader does not know them: the
# toolkit's, and those of Python's nvidia wheels. Printed one per line, existing ones only.
cuda_lib_dirs() {
  local dir root
  for dir in "${CUDA_HOME:-/nonexistent}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -d $dir ]] && echo "$dir"
  done
  root=$(timeout 20 python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null)
  [[ -n $root ]] && find "$root" \( -name 'libcudart.so.13' -o -name 'libcublas.so.13' -o -name 'libcublasLt.so.13' \) \
    -exec dirname {} \; 2>/dev/null | sort -u
  return 0
}

ROWS=()        # "step|status|required|seconds|log|note"
FAILED_STEPS=()

# record STEP STATUS REQUIRED SECONDS LOG NOTE
record() {
  local note=${6//|//}
  note=${note//$'\n'/ }
  ROWS+=("$1|$2|$3|$4|$5|$note")
  if [[ $3 == yes && $2 != PASS ]]; then FAILED_STEPS+=("$1"); fi
  printf '[gpu-check] %-10s %-4s %4ss  %s\n' "$1" "$2" "$4" "$note"
}

# run_step CAP LOG CMD...: runs CMD under timeout (the smaller of CAP and the time left, less
# RESERVE seconds kept for the benchmark), appending its output to LOG. Sets STEP_RC (-1: not run,
# no time left), STEP_SECS, STEP_NOTE.
RESERVE=0
run_step() {
  local cap=$1 log=$2
  shift 2
  local left=$((DEADLINE - SECONDS - 5 - RESERVE)) limit=$cap
  ((left < limit)) && limit=$left
  STEP_NOTE=""
  STEP_SECS=0
  if ((limit < 15)); then
    STEP_RC=-1
    STEP_NOTE="not run: under 15 s left of the ${BUDGET} s budget"
    echo "### not run (no time left): $*" >>"$log"
    return
  fi
  echo "### $* (timeout ${limit}s)" >>"$log"
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" >>"$log" 2>&1
  STEP_RC=$?
  STEP_SECS=$((SECONDS - t0))
  if ((STEP_RC == 124 || STEP_RC == 137)); then STEP_NOTE="timed out after ${limit} s"; fi
  echo "### exit status $STEP_RC after ${STEP_SECS}s" >>"$log"
}

# status_of RC: PASS for 0, SKIP when not run for lack of time, else FAIL.
status_of() {
  if (($1 == 0)); then echo PASS; elif (($1 == -1)); then echo SKIP; else echo FAIL; fi
}

# ------------------------------------------------------------------ environment
ENV_LOG=$LOGS/01-env.log
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(hostname 2>/dev/null)  cores: $JOBS"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (working tree differs from HEAD)')"
  echo "cmake: $(cmake --version 2>/dev/null | head -n 1 || echo 'not found')"
} >"$ENV_LOG"

if command -v nvidia-smi >/dev/null 2>&1; then
  run_step 30 "$ENV_LOG" nvidia-smi
  note=""
  ((STEP_RC != 0)) && note="nvidia-smi failed (exit $STEP_RC): no driver or no GPU? ${STEP_NOTE}"
  record nvidia-smi "$(status_of $STEP_RC)" no "$STEP_SECS" logs/01-env.log "$note"
else
  echo "nvidia-smi: not found" >>"$ENV_LOG"
  record nvidia-smi FAIL no 0 logs/01-env.log "nvidia-smi not found: no NVIDIA driver on this machine"
fi
if command -v nvcc >/dev/null 2>&1; then
  run_step 30 "$ENV_LOG" nvcc --version
  record nvcc "$(status_of $STEP_RC)" no "$STEP_SECS" logs/01-env.log "$(command -v nvcc)${STEP_NOTE:+: $STEP_NOTE}"
else
  echo "nvcc: not found" >>"$ENV_LOG"
  record nvcc FAIL no 0 logs/01-env.log "nvcc not found on PATH or in /usr/local/cuda/bin: the CUDA kernels cannot be built"
fi
cat "$ENV_LOG"

# ------------------------------------------------------------------ configure and build
BUILD_LOG=$LOGS/02-build.log
: >"$BUILD_LOG"
run_step 120 "$BUILD_LOG" cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPLORA_CUDA_ARCHITECTURES=90 \
  -DPLORA_BUILD_BENCH=ON
CONFIGURED=$STEP_RC
CUDA_COMPILED=0
grep -q "plora: CUDA kernels for sm" "$BUILD_LOG" && CUDA_COMPILED=1
note=$STEP_NOTE
if ((CONFIGURED == 0 && CUDA_COMPILED == 0)); then
  note="configured WITHOUT CUDA: CMake found no nvcc, so libplora_cuda is the stub"
fi
record configure "$(status_of $CONFIGURED)" yes "$STEP_SECS" logs/02-build.log "$note"

BUILT=-1
if ((CONFIGURED == 0)); then
  targets=(plora_cpu plora_cuda test_cpu_kernels)
  ((CUDA_COMPILED)) && targets+=(test_cuda_parity plora_cuda_bench)
  run_step 300 "$BUILD_LOG" cmake --build "$BUILD_DIR" --parallel "$JOBS" --target "${targets[@]}"
  BUILT=$STEP_RC
  note=$STEP_NOTE
  ((BUILT > 0)) && [[ -z $note ]] && note="build failed: $(grep -m 1 -E 'error|Error' "$BUILD_LOG" | cut -c 1-160)"
  ((BUILT == 0)) && note="targets: ${targets[*]}"
  record build "$(status_of $BUILT)" yes "$STEP_SECS" logs/02-build.log "$note"
else
  record build SKIP yes 0 logs/02-build.log "not run: configure failed"
fi

PARITY=$BUILD_DIR/native/tests/test_cuda_parity
BENCH=$BUILD_DIR/native/bench/plora_cuda_bench
CUDA_READY=0
((BUILT == 0 && CUDA_COMPILED == 1)) && CUDA_READY=1

# ------------------------------------------------------------------ ctest
# From here on, keep enough time for the benchmark at the end.
RESERVE=100
((QUICK)) && RESERVE=50
CTEST_LOG=$LOGS/03-ctest.log
: >"$CTEST_LOG"
if ((BUILT == 0)); then
  run_step 180 "$CTEST_LOG" ctest --test-dir "$BUILD_DIR" -V
  rc=$STEP_RC
  status=$(status_of $rc)
  note=$STEP_NOTE
  if ((rc > 0)) && [[ -z $note ]]; then
    note="failed: $(grep -E '^\s*[0-9]+ - ' "$CTEST_LOG" | sed 's/^ *//' | tr '\n' ' ')"
  fi
  if ((rc == 0)); then
    if ((CUDA_COMPILED == 0)); then
      status=FAIL
      note="CUDA kernels not compiled (no nvcc found by CMake): test_cuda_parity does not exist"
    elif grep -Eq 'cuda_parity \.+ *Passed' "$CTEST_LOG"; then
      note="cpu_kernels and cuda_parity passed"
    elif grep -Eq 'cuda_parity \.+\*+Skipped' "$CTEST_LOG"; then
      status=FAIL
      why=$(grep -m 1 -E 'SKIP:' "$CTEST_LOG" | sed 's/^[0-9]*: //')
      note="test_cuda_parity was SKIPPED (exit 77), which counts as a failure here: ${why:-no usable GPU}"
    else
      status=FAIL
      note="no 'cuda_parity ... Passed' line in the ctest output"
    fi
  fi
  record ctest "$status" yes "$STEP_SECS" logs/03-ctest.log "$note"
else
  echo "not run: the build failed" >>"$CTEST_LOG"
  record ctest SKIP yes 0 logs/03-ctest.log "not run: the build failed"
fi

# ------------------------------------------------------------------ Java suite
# The JUnit suite with its CUDA cases, from the bundle scripts/gpu-java-bundle.sh made (gpu-java/,
# carried with the working tree): plora.test.requireCuda turns a CUDA case that would skip into a
# failure. Without the bundle the step is a SKIP.
JAVA_LOG=$LOGS/04-java.log
: >"$JAVA_LOG"
if [[ -f gpu-java/runtime.tgz ]]; then
  JAVA_HOME_DIR=$(mktemp -d)
  tar -C "$JAVA_HOME_DIR" -xzf gpu-java/runtime.tgz
  # where JavaCPP finds libcudart.so.13 and libcublas.so.13: the toolkit, or Python's nvidia wheels
  mapfile -t cuda_dirs < <(cuda_lib_dirs)
  # the bundle's libgomp, only where the machine has none of its own
  in_loader_cache 'libgomp.so.1 ' || cuda_dirs+=("$ROOT/gpu-java/native")
  lib_path=""
  for dir in "${cuda_dirs[@]}"; do [[ -d $dir ]] && lib_path="$lib_path${lib_path:+:}$dir"; done
  {
    echo "bundle: $(cat gpu-java/STAMP 2>/dev/null || echo 'no STAMP')"
    echo "LD_LIBRARY_PATH additions: ${lib_path:-none}"
  } >>"$JAVA_LOG"
  classpath=$(ls gpu-java/lib/*.jar | paste -sd ':' -)  # no trailing ':', which would add the working directory
  RESERVE=$((RESERVE + 60))  # the sanitizers and the benchmark come after
  LD_LIBRARY_PATH="${lib_path}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" run_step 180 "$JAVA_LOG" \
    "$JAVA_HOME_DIR/runtime/bin/java" -Dplora.test.requireCuda=true -cp "$classpath" \
    org.junit.platform.console.ConsoleLauncher execute --scan-class-path gpu-java/lib/plora-tests.jar \
    --disable-banner --details=summary --details-theme=ascii
  RESERVE=$((RESERVE - 60))
  rc=$STEP_RC
  counts=$(sed -n 's/^\[ *\([0-9]*\) tests \(successful\|failed\|aborted\) *\]$/\1 \2/p' "$JAVA_LOG" | paste -sd ',' - | sed 's/,/, /g')
  note="${STEP_NOTE:-${counts:-no JUnit summary}}"
  if ((rc != 0)) && grep -q 'CUDA backend required' "$JAVA_LOG"; then
    note="$note; CUDA unusable from Java: $(grep -m 1 -o 'but unusable: .*' "$JAVA_LOG" | cut -c 15-200)"
  fi
  stamp_commit=$(sed -n 's/^commit \([0-9a-f]*\).*/\1/p' gpu-java/STAMP 2>/dev/null)
  head_commit=$(git rev-parse --short HEAD 2>/dev/null)
  [[ -n $stamp_commit && -n $head_commit && $stamp_commit != "$head_commit" ]] &&
    note="$note; WARNING: bundle built at $stamp_commit, tree at $head_commit"
  record java "$(status_of $rc)" yes "$STEP_SECS" logs/04-java.log "$note"
  rm -rf "$JAVA_HOME_DIR"
else
  echo "no gpu-java/runtime.tgz: run scripts/gpu-java-bundle.sh first and carry gpu-java" >>"$JAVA_LOG"
  record java SKIP no 0 logs/04-java.log "no bundle: run scripts/gpu-java-bundle.sh here and carry gpu-java"
fi

# ------------------------------------------------------------------ compute-sanitizer
SANITIZER=$(command -v compute-sanitizer 2>/dev/null || true)
[[ -z $SANITIZER && -x /usr/local/cuda/bin/compute-sanitizer ]] && SANITIZER=/usr/local/cuda/bin/compute-sanitizer
SANITIZER_LOG=$LOGS/05-sanitizers.log  # both tools, one after the other: 8 files come back at most
: >"$SANITIZER_LOG"
# sanitizer_step TOOL LOG: runs test_cuda_parity under TOOL with its output in LOG and records it.
sanitizer_step() {
  local tool=$1 log=$2 name=logs/05-sanitizers.log
  if [[ -z $SANITIZER ]]; then
    echo "compute-sanitizer not found on PATH or in /usr/local/cuda/bin" >>"$log"
    record "$tool" SKIP no 0 "$name" "compute-sanitizer not found (PATH, /usr/local/cuda/bin): not checked"
    return
  fi
  if ((CUDA_READY == 0)); then
    echo "not run: test_cuda_parity was not built" >>"$log"
    record "$tool" SKIP yes 0 "$name" "not run: test_cuda_parity was not built"
    return
  fi
  # the shapes past the launch caps run in plain ctest; under a sanitizer they would take minutes
  PLORA_PARITY_SKIP_BIG=1 run_step 150 "$log" "$SANITIZER" --tool "$tool" --error-exitcode 86 --print-limit 20 "$PARITY"
  local rc=$STEP_RC note=$STEP_NOTE
  local summary_line
  summary_line=$(grep -m 1 -E '(ERROR|RACECHECK) SUMMARY' "$log" | sed 's/^=* *//')
  # a sanitizer that could not attach ran nothing: no summary line, no timeout
  if ((rc != 0 && rc != 86 && rc != 124 && rc != 137)) && [[ -z $summary_line ]] &&
    grep -q -E 'Device not supported|Unable to initialize|LibraryNotLoaded' "$log"; then
    # some container runtimes expose the GPU but not the debug interface the sanitizer needs
    record "$tool" SKIP no "$STEP_SECS" "$name" \
      "compute-sanitizer cannot attach on this machine: $(grep -m 1 -o -E '(Device not supported|Unable to initialize|LibraryNotLoaded)[^.]*' "$log")"
    return
  fi
  if ((rc == 77)); then
    note="test_cuda_parity skipped (exit 77) under the sanitizer: $(grep -m 1 'SKIP:' "$log")"
  elif ((rc == 86)); then
    note="$tool reported errors: $summary_line"
  elif ((rc > 0)) && [[ -z $note ]]; then
    note="exit $rc: $(grep -v '^###' "$log" | tail -n 1 | cut -c 1-160)"
  else
    note="${summary_line:-$note}"
  fi
  record "$tool" "$(status_of $rc)" yes "$STEP_SECS" "$name" "$note"
}
for tool in memcheck racecheck; do
  tool_log=$(mktemp)
  sanitizer_step "$tool" "$tool_log"
  { echo "=================== $tool"; cat "$tool_log"; } >>"$SANITIZER_LOG"
  rm -f "$tool_log"
done

# ------------------------------------------------------------------ benchmark
BENCH_LOG=$LOGS/06-bench.log
: >"$BENCH_LOG"
if ((CUDA_READY == 1)); then
  if ! in_loader_cache 'libcublas.so.13 ' && [[ -z ${PLORA_CUBLAS:-} ]]; then
    while read -r dir; do
      if [[ -e $dir/libcublas.so.13 ]]; then
        export PLORA_CUBLAS=$dir/libcublas.so.13
        break
      fi
    done < <(cuda_lib_dirs)
  fi
  echo "PLORA_CUBLAS=${PLORA_CUBLAS:-<unset: dlopen(libcublas.so.13) through the loader search path>}" >>"$BENCH_LOG"
  RESERVE=0
  mode=()
  cap=240
  ((QUICK)) && mode=(--quick) && cap=120
  run_step "$cap" "$BENCH_LOG" "$BENCH" ${mode[@]+"${mode[@]}"} --csv "$OUT_DIR/bench.csv"
  rc=$STEP_RC
  note=$STEP_NOTE
  if ((rc == 0)); then
    note=$(grep -m 1 -o 'layer/base:.*(target <= 1.07: [A-Za-z ]*)' "$BENCH_LOG")
    grep -q 'skipped: ' "$BENCH_LOG" && note="$note; WARNING: rows skipped: $(grep -m 1 -o 'skipped: .*' "$BENCH_LOG" | cut -c 1-160)"
  elif ((rc == 77)); then
    note="no usable GPU: $(grep -m 1 'plora_cuda_bench:' "$BENCH_LOG")"
  elif [[ -z $note ]]; then
    note="exit $rc: $(grep -m 1 'error:' "$BENCH_LOG" | cut -c 1-200)"
  fi
  record bench "$(status_of $rc)" yes "$STEP_SECS" logs/06-bench.log "$note"
else
  echo "not run: plora_cuda_bench was not built" >>"$BENCH_LOG"
  record bench SKIP yes 0 logs/06-bench.log "not run: plora_cuda_bench was not built (build failed or no CUDA)"
fi

# ------------------------------------------------------------------ report
RESULT=PASS
((${#FAILED_STEPS[@]} > 0)) && RESULT=FAIL
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)

steps_table() {
  echo "| step | status | required | seconds | log | note |"
  echo "|---|---|---|---|---|---|"
  local row
  for row in "${ROWS[@]}"; do
    IFS='|' read -r step status required secs log note <<<"$row"
    echo "| $step | $status | $required | $secs | $log | $note |"
  done
  echo
  if [[ $RESULT == PASS ]]; then
    echo "Result: PASS (every required step passed) in $SECONDS s"
  else
    echo "Result: FAIL (required steps not passed: ${FAILED_STEPS[*]}) in $SECONDS s"
  fi
}

bench_section() {
  if ((QUICK)); then echo "## Benchmark: plora_cuda_bench --quick"; else echo "## Benchmark: plora_cuda_bench"; fi
  echo
  if grep -q '^summary:' "$BENCH_LOG"; then
    echo '```'
    grep -v '^###' "$BENCH_LOG"
    echo '```'
  else
    echo "No benchmark table: see logs/06-bench.log."
  fi
}

{
  echo "# plora GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); $(sed -n 2p "$ENV_LOG")"
  echo "- GPU: ${GPU:-none found by nvidia-smi}; nvcc: $(nvcc --version 2>/dev/null | grep -m 1 -o 'release [0-9.]*' || echo 'not found')"
  echo "- build: $BUILD_DIR (Release, sm_90); benchmark mode: $( ((QUICK)) && echo quick || echo full); budget ${BUDGET} s"
  echo "- compute-sanitizer: ${SANITIZER:-NOT FOUND (memcheck and racecheck not run)}"
  echo
  steps_table
  echo
  bench_section
} >"$OUT_DIR/summary.md"

echo
bench_section
echo
steps_table
echo "report: $OUT_DIR/summary.md, logs in $LOGS"
[[ $RESULT == PASS ]]
