// Fibers: the threads of a simulated block run as cooperative coroutines on one host thread, each
// on its own stack, so that a thread waiting at __syncthreads() or in a shuffle can be suspended
// until the rest of its block (or warp) gets there. On x86-64 a dozen instructions switch stacks
// (ucontext's switch costs a system call, and a block switches thousands of times); elsewhere
// ucontext does it. The stacks are mmap'd with a guard page, so an overflow faults instead of
// corrupting a neighbour.
#ifndef PLORA_SIM_FIBERS_H
#define PLORA_SIM_FIBERS_H

#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace sim {

class Fiber {
 public:
  Fiber();
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Prepares the fiber to run entry(arg) from the start of its stack when next resumed.
  void start(void (*entry)(void*), void* arg);
  // Switches from the scheduler to this fiber; returns when the fiber yields or finishes.
  void resume();
  // Switches from this fiber (the one running) back to the scheduler.
  void yield();

  // The fiber's first frame: arrived() (the switch is complete), then run(): entry(arg) and a last
  // yield. Two calls, so that AddressSanitizer hears of the new stack before a call it sees never
  // returns.
  void arrived();
  void run();

 private:
  static constexpr size_t kStackBytes = 256 * 1024;
  char* mapping_ = nullptr;  // guard page, then the stack
  char* stack_ = nullptr;
  void (*entry_)(void*) = nullptr;
  void* arg_ = nullptr;
#if defined(__x86_64__)
  void* sp_ = nullptr;         // the fiber's saved stack pointer
  void* caller_sp_ = nullptr;  // the scheduler's
#else
  ucontext_t context_{}, caller_{};
#endif
  void* asan_fake_stack_ = nullptr;  // AddressSanitizer: the scheduler's side of a switch
  const void* caller_bottom_ = nullptr;
  size_t caller_size_ = 0;
};

}  // namespace sim

#endif
