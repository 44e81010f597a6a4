// Memory accesses that turn SIGSEGV/SIGBUS into a return value instead of
// killing the process, so tests can provoke faults in a mapping on purpose.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mmapkit {

struct Fault {
  int signo;          // SIGSEGV or SIGBUS
  uintptr_t address;  // si_addr reported by the kernel
};

// Installs the SIGSEGV and SIGBUS handlers once per process (every later
// call is a no-op). Returns 0, or the errno of the failing sigaction().
int InstallFaultHandlers();

// Each access returns true when it completed, or false with *fault filled in
// when it faulted. None of them allocates while the fault trap is armed.
bool GuardedRead(uintptr_t mapping, uint8_t* out, size_t length, Fault* fault);
bool GuardedWrite(uintptr_t mapping, const uint8_t* in, size_t length,
                  Fault* fault);
bool GuardedProbe(uintptr_t address, bool write, Fault* fault);

// Runs fn(context) with the trap armed once, for loops that touch a mapping
// many times (the benchmarks, bench_*.cc): no per-access cost. fn must not
// allocate or throw; after a fault, whatever it left in *context is partial.
bool GuardedCall(void (*fn)(void*), void* context, Fault* fault);

}  // namespace mmapkit
