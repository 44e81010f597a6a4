// The functions exported to JavaScript; see native/index.ts for their types.
#pragma once

#include <napi.h>

namespace mmapkit {

// syscalls.cc: thin wrappers, one syscall each.
Napi::Value Open(const Napi::CallbackInfo& info);
Napi::Value Close(const Napi::CallbackInfo& info);
Napi::Value Mmap(const Napi::CallbackInfo& info);
Napi::Value Munmap(const Napi::CallbackInfo& info);
Napi::Value Mprotect(const Napi::CallbackInfo& info);
Napi::Value PageSize(const Napi::CallbackInfo& info);

// memory_access.cc: fault-guarded accesses to mapped memory.
Napi::Value ReadBytes(const Napi::CallbackInfo& info);
Napi::Value WriteBytes(const Napi::CallbackInfo& info);
Napi::Value Probe(const Napi::CallbackInfo& info);

// child_reader.cc: reading a mapping from a second process.
Napi::Value ReadInChild(const Napi::CallbackInfo& info);

}  // namespace mmapkit
