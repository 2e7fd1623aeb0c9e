// Fibers of the CUDA simulator (see fibers.h). Under AddressSanitizer the switches are announced
// with the sanitizer's fiber calls, so that it follows the stacks.
#include "fibers.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SIM_ASAN 1
#endif

#if defined(__x86_64__)
// sim_switch(save, next): pushes the callee-saved registers on the current stack (not the SSE /
// x87 control words: nothing here changes them), stores the stack pointer in *save, loads next, pops the same from there
// and returns into whatever that stack was doing. sim_fiber_start is where a new fiber's stack
// first returns to: it calls sim_fiber_run(fiber), the fiber having been left in r12.
extern "C" void sim_switch(void** save, void* next);
extern "C" void sim_fiber_run(sim::Fiber* fiber) {
  fiber->arrived();
  fiber->run();
}
asm(R"(
  .text
  .globl sim_switch
  .type sim_switch, @function
sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size sim_switch, .-sim_switch

  .globl sim_fiber_start
  .type sim_fiber_start, @function
sim_fiber_start:
  movq %r12, %rdi
  call sim_fiber_run@PLT
  ud2
  .size sim_fiber_start, .-sim_fiber_start
  .section .note.GNU-stack,"",@progbits
  .text
)");
extern "C" void sim_fiber_start();
#endif

namespace sim {

Fiber::Fiber() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    std::perror("simulator: fiber stack");
    std::abort();
  }
  mapping_ = static_cast<char*>(m);
  mprotect(mapping_, page, PROT_NONE);  // the stack grows down into this page: a fault, not corruption
  stack_ = mapping_ + page;
}

Fiber::~Fiber() { munmap(mapping_, kStackBytes + static_cast<size_t>(sysconf(_SC_PAGESIZE))); }

void Fiber::arrived() {
#if SIM_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &caller_bottom_, &caller_size_);
#endif
}

void Fiber::run() {
  entry_(arg_);
  yield();  // finished: never resumed again before the next start()
  std::abort();
}

#if defined(__x86_64__)

void Fiber::start(void (*entry)(void*), void* arg) {
  entry_ = entry;
  arg_ = arg;
#if SIM_ASAN
  ASAN_UNPOISON_MEMORY_REGION(stack_, kStackBytes);  // frames the last run left behind never returned
#endif
  // The frame sim_switch pops: r15, r14, r13, r12 (this fiber), rbx, rbp, then the return address;
  // placed so that sim_fiber_start's call sees the ABI's 16-byte alignment.
  const uintptr_t top = (reinterpret_cast<uintptr_t>(stack_) + kStackBytes) & ~uintptr_t(15);
  uint64_t* frame = reinterpret_cast<uint64_t*>(top - 72);
  for (int i = 0; i < 6; ++i) frame[i] = 0;
  frame[3] = reinterpret_cast<uint64_t>(this);  // r12
  frame[6] = reinterpret_cast<uint64_t>(&sim_fiber_start);
  sp_ = frame;
}

void Fiber::resume() {
#if SIM_ASAN
  __sanitizer_start_switch_fiber(&asan_fake_stack_, stack_, kStackBytes);
#endif
  sim_switch(&caller_sp_, sp_);
#if SIM_ASAN
  __sanitizer_finish_switch_fiber(asan_fake_stack_, nullptr, nullptr);
#endif
}

void Fiber::yield() {
#if SIM_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, caller_bottom_, caller_size_);  // back to the scheduler's stack
#endif
  sim_switch(&sp_, caller_sp_);
#if SIM_ASAN
  __sanitizer_finish_switch_fiber(fake, &caller_bottom_, &caller_size_);
#endif
}

#else  // ucontext

namespace {
void trampoline(unsigned lo, unsigned hi) {
  Fiber* fiber = reinterpret_cast<Fiber*>((static_cast<uintptr_t>(hi) << 32) | lo);
  fiber->arrived();
  fiber->run();
}
}  // namespace

void Fiber::start(void (*entry)(void*), void* arg) {
  entry_ = entry;
  arg_ = arg;
#if SIM_ASAN
  ASAN_UNPOISON_MEMORY_REGION(stack_, kStackBytes);  // frames the last run left behind never returned
#endif
  getcontext(&context_);
  context_.uc_stack.ss_sp = stack_;
  context_.uc_stack.ss_size = kStackBytes;
  context_.uc_link = nullptr;
  const uintptr_t self = reinterpret_cast<uintptr_t>(this);
  makecontext(&context_, reinterpret_cast<void (*)()>(&trampoline), 2, static_cast<unsigned>(self),
              static_cast<unsigned>(self >> 32));
}

void Fiber::resume() {
#if SIM_ASAN
  __sanitizer_start_switch_fiber(&asan_fake_stack_, stack_, kStackBytes);
#endif
  swapcontext(&caller_, &context_);
#if SIM_ASAN
  __sanitizer_finish_switch_fiber(asan_fake_stack_, nullptr, nullptr);
#endif
}

void Fiber::yield() {
#if SIM_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, caller_bottom_, caller_size_);
#endif
  swapcontext(&context_, &caller_);
#if SIM_ASAN
  __sanitizer_finish_switch_fiber(fake, &caller_bottom_, &caller_size_);
#endif
}

#endif

}  // namespace sim
