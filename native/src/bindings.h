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
Napi::Value MinorFaults(const Napi::CallbackInfo& info);
Napi::Value MajorFaults(const Napi::CallbackInfo& info);
Napi::Value DeleteModule(const Napi::CallbackInfo& info);

// mapping_syscalls.cc: thin wrappers for calls on an existing mapping.
Napi::Value Mremap(const Napi::CallbackInfo& info);
Napi::Value Madvise(const Napi::CallbackInfo& info);
Napi::Value Mlock(const Napi::CallbackInfo& info);
Napi::Value Munlock(const Napi::CallbackInfo& info);
Napi::Value Msync(const Napi::CallbackInfo& info);
Napi::Value Mincore(const Napi::CallbackInfo& info);

// device_ioctls.cc: the mmapkit devices' ioctls (kmod/uapi/mmapkit.h).
Napi::Value DeviceInfo(const Napi::CallbackInfo& info);
Napi::Value DeviceStats(const Napi::CallbackInfo& info);
Napi::Value ResetStats(const Napi::CallbackInfo& info);
Napi::Value PagePfn(const Napi::CallbackInfo& info);

// pagemap.cc: this process's page-table entries.
Napi::Value Pagemap(const Napi::CallbackInfo& info);

// memory_access.cc: fault-guarded accesses to mapped memory.
Napi::Value ReadBytes(const Napi::CallbackInfo& info);
Napi::Value WriteBytes(const Napi::CallbackInfo& info);
Napi::Value Probe(const Napi::CallbackInfo& info);

// child_reader.cc: reading a mapping from a second process.
Napi::Value ReadInChild(const Napi::CallbackInfo& info);
Napi::Value ReadInForkedChild(const Napi::CallbackInfo& info);

// fork_exit.cc: a child that is forked and exits at once.
Napi::Value ForkAndExit(const Napi::CallbackInfo& info);

// bench_map.cc, bench_read.cc: the timed loops of `mmapkit bench`.
Napi::Value BenchMapTouch(const Napi::CallbackInfo& info);
Napi::Value BenchFill(const Napi::CallbackInfo& info);
Napi::Value BenchSequentialRead(const Napi::CallbackInfo& info);
Napi::Value BenchRandomRead(const Napi::CallbackInfo& info);
Napi::Value BenchReadSyscall(const Napi::CallbackInfo& info);
Napi::Value BenchPread(const Napi::CallbackInfo& info);

}  // namespace mmapkit
