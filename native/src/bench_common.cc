// The clock, fault counters and result objects of the benchmark loops.
#include <sys/resource.h>
#include <time.h>

#include <cerrno>

#include "bench.h"
#include "errors.h"

namespace mmapkit {
namespace bench {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<uint64_t>(ts.tv_nsec);
}

Faults ThreadFaults() {
  struct rusage usage;
  // Cannot fail with these arguments; a failure reads as no faults.
  if (getrusage(RUSAGE_THREAD, &usage) != 0) return {0, 0};
  return {usage.ru_minflt, usage.ru_majflt};
}

Faults FaultsSince(const Faults& before) {
  const Faults now = ThreadFaults();
  return {now.minor - before.minor, now.major - before.major};
}

Napi::Object TimingObject(Napi::Env env, const Timing& timing) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("ns", Napi::Number::New(env, static_cast<double>(timing.ns)));
  result.Set("minorFaults",
             Napi::Number::New(env, static_cast<double>(timing.faults.minor)));
  result.Set("majorFaults",
             Napi::Number::New(env, static_cast<double>(timing.faults.major)));
  result.Set("checksum", Napi::BigInt::New(env, timing.checksum));
  return result;
}

void RunGuardedOrThrow(Napi::Env env, void (*fn)(void*), void* context) {
  Fault fault;
  if (!GuardedCall(fn, context, &fault)) {
    throw FaultError(env, fault);
  }
}

}  // namespace bench
}  // namespace mmapkit
