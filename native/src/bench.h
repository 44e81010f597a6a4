// Shared by the benchmark hot loops (bench_*.cc, `mmapkit bench`): the
// clock, the fault counters and the result object every loop returns.
#pragma once

#include <napi.h>

#include <cstdint>

#include "fault_guard.h"

namespace mmapkit {
namespace bench {

// CLOCK_MONOTONIC in nanoseconds (the vDSO: no syscall, no fault).
uint64_t NowNs();

// ru_minflt and ru_majflt of getrusage(RUSAGE_THREAD): the faults this
// thread took, so the agent's other threads (V8's GC, libuv's pool) never
// blur a loop's count.
struct Faults {
  int64_t minor;
  int64_t major;
};
Faults ThreadFaults();

// The faults this thread took since `before` was read.
Faults FaultsSince(const Faults& before);

// What a timed loop measured: its time, the faults taken inside it, and the
// wrapping sum of every 8-byte word it loaded (so the loads cannot be
// optimised away, and two ways of reading the same bytes can be compared).
struct Timing {
  uint64_t ns = 0;
  Faults faults = {0, 0};
  uint64_t checksum = 0;
};

// The frame of every timed loop: the faults around it, the clock inside
// them, so reading the counters is neither timed nor counted. `loop`
// returns its checksum; an exception it throws passes through.
template <typename Loop>
Timing Measure(Loop loop) {
  const Faults before = ThreadFaults();
  const uint64_t start = NowNs();
  Timing timing;
  timing.checksum = loop();
  timing.ns = NowNs() - start;
  timing.faults = FaultsSince(before);
  return timing;
}

// { ns, minorFaults, majorFaults, checksum } as a plain object the guest
// protocol carries (numbers, and a BigInt for the checksum).
Napi::Object TimingObject(Napi::Env env, const Timing& timing);

// Runs fn(context) with the fault trap armed; a fault throws the addon's
// usual SIGBUS/SIGSEGV error (code, address) instead of killing the agent.
void RunGuardedOrThrow(Napi::Env env, void (*fn)(void*), void* context);

// Measure(loop) with the fault trap armed: the frame of the loops that load
// from a mapping. loop must not allocate or throw (GuardedCall).
template <typename Loop>
Timing MeasureGuarded(Napi::Env env, Loop loop) {
  Timing timing;
  auto run = [&] { timing = Measure(loop); };
  RunGuardedOrThrow(
      env, [](void* context) { (*static_cast<decltype(run)*>(context))(); },
      &run);
  return timing;
}

// The pattern benchFill writes: word i (at byte offset 8 * i) of a buffer
// filled with `seed`. Any reader can recompute what it should have read.
inline uint64_t PatternWord(uint64_t seed, uint64_t i) {
  uint64_t x = seed + i * 0x9E3779B97F4A7C15ull;  // splitmix64
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// xorshift64*: the random offsets of benchRandomRead and benchPread, the
// same sequence for the same seed.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed != 0 ? seed : 1) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }

 private:
  uint64_t state_;
};

}  // namespace bench
}  // namespace mmapkit
