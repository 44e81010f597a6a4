// Conversion of JavaScript arguments to the exact C types the syscalls take.
// Every conversion is strict and throws a TypeError rather than coercing, so
// a wrong value never reaches the kernel in altered form.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace mmapkit {

// A BigInt in [0, 2^64), passed on bit for bit as an unsigned long.
uint64_t ToUint64(const Napi::Value& value, const char* name);

// A number that is an integer in the int32 range (fds, prot, flags).
int32_t ToInt32(const Napi::Value& value, const char* name);

// A number that is a non-negative safe integer (byte counts of copies).
size_t ToSize(const Napi::Value& value, const char* name);

// A string without NUL bytes: a NUL would silently cut the path short.
std::string ToPath(const Napi::Value& value, const char* name);

// The same for other strings the kernel reads up to a NUL (module names).
std::string ToName(const Napi::Value& value, const char* name);

// 'read' -> false, 'write' -> true.
bool ToIsWrite(const Napi::Value& value, const char* name);

// A Uint8Array (Buffer included).
Napi::Uint8Array ToBytes(const Napi::Value& value, const char* name);

// An address as the pointer libc's wrappers take.
inline void* ToPointer(uint64_t address) {
  return reinterpret_cast<void*>(address);
}

// The range of this process's address space the calls on a mapping take
// first: info[0] (addr) and info[1] (length).
struct Range {
  void* addr;
  uint64_t length;
};
Range ToRange(const Napi::CallbackInfo& info);

}  // namespace mmapkit
