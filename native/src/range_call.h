// The wrappers of the calls on a range of this process's address space
// (munmap, mprotect, madvise, mlock, munlock, msync): addr and length from
// info[0] and info[1], then, for the calls that take one, the int in
// info[2], converted in that order; undefined, or Node's error on failure.
#pragma once

#include <napi.h>

#include "args.h"
#include "errors.h"

namespace mmapkit {

template <typename Call>
Napi::Value RangeCall(const Napi::CallbackInfo& info, const char* syscall,
                      Call call) {
  const Range range = ToRange(info);
  return UndefinedOrThrow(info.Env(), call(range.addr, range.length), syscall);
}

// `flag` names info[2] in the TypeError of a wrong value (prot, advice, ...).
template <typename Call>
Napi::Value RangeCall(const Napi::CallbackInfo& info, const char* syscall,
                      const char* flag, Call call) {
  const Range range = ToRange(info);
  const int value = ToInt32(info[2], flag);
  return UndefinedOrThrow(info.Env(), call(range.addr, range.length, value),
                          syscall);
}

}  // namespace mmapkit
