// Memory accesses that turn SIGSEGV/SIGBUS into a return value instead of
// killing the process, so tests can provoke faults in a mapping on purpose,
// and that give up on an access stuck on one address (a fault retried
// forever, taxonomy #11) instead of hanging the process with it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mmapkit {

// A guarded access that makes no progress for this long is given up on.
// A fault that is retried forever (a ->fault that returns VM_FAULT_NOPAGE
// without installing a PTE, taxonomy #11) goes back to user space between
// retries, where a signal can be delivered; the watchdog's signal jumps out
// of it. Progress is per word copied, so the budget bounds one stuck
// address, not a whole copy: a first-touch readBytes of 64 MiB of shmem
// takes 2.1 s under TCG and must not be stopped. Measured under TCG on this
// project's 2-core machine (6.1 guest, probe() of every page of
// /dev/mmapkit, /dev/mmapkit-fault and 64 MiB of /dev/zero, first touch):
// median 0.02-0.13 ms, slowest 17 ms, call overhead included; a fault that
// waits for the mmap lock behind a fork of the agent (about 65 ms under TCG)
// waits longer. 1 s is about 60 times the slowest access and 15 times that
// fork, and keeps a stuck access far below the host's request deadline
// (20 s or more), so the agent answers instead of the guest being presumed
// hung and rebooted.
constexpr int kStallBudgetMs = 1000;

// A retried fault is usually seen long before that: each retry is counted as
// a completed fault of the thread (mm_account_fault counts every ->fault
// result but VM_FAULT_ERROR and VM_FAULT_RETRY, so VM_FAULT_NOPAGE too), and
// one word needs at most a few (a read fault, a write fault for COW, a retry
// after a racing zap). An access whose word took this many faults without
// moving on is given up on at the watchdog's next look: under TCG a livelocked
// access retries 2,000-11,000 times in 50 ms, and a driver that livelocks
// every access took a whole-suite run 112 s with the 1 s budget alone, 36 s
// with this one (36 of its 98 cases stalled; 6.1, one vCPU, 2026-12-01).
// A fault that waits (on a lock, on I/O) counts once, when it completes, so
// it falls to the time budget.
constexpr uint64_t kRetriedFaults = 1000;

struct Fault {
  int signo;          // SIGSEGV or SIGBUS; 0 when stalled
  bool stalled;       // the watchdog gave up: no progress within its budget
  uintptr_t address;  // si_addr reported by the kernel, or where it stalled
  // For a stalled access: how long it made no progress, and how many faults
  // the thread took meanwhile.
  int64_t stalled_ms;
  uint64_t faults;
};

// Installs the SIGSEGV and SIGBUS handlers and the watchdog's (a real-time
// signal) once per process (every later call is a no-op). Returns 0, or
// the errno of the failing sigaction().
int InstallFaultHandlers();

// Each access returns true when it completed, or false with *fault filled in
// when it faulted or stalled. None of them allocates while the fault trap is
// armed. Read, write and probe are watched: one that makes no progress for
// kStallBudgetMs, or through kRetriedFaults faults, returns with
// fault->stalled set.
bool GuardedRead(uintptr_t mapping, uint8_t* out, size_t length, Fault* fault);
bool GuardedWrite(uintptr_t mapping, const uint8_t* in, size_t length,
                  Fault* fault);
bool GuardedProbe(uintptr_t address, bool write, Fault* fault);

// Runs fn(context) with the trap armed once, for loops that touch a mapping
// many times (the benchmarks, bench_*.cc): no per-access cost, and no
// watchdog, since a timed loop must not be interrupted. fn must not
// allocate or throw; after a fault, whatever it left in *context is partial.
bool GuardedCall(void (*fn)(void*), void* context, Fault* fault);

}  // namespace mmapkit
