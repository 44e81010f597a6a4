// What the addon exports to JavaScript, listed once: the functions (each
// with the C++ function that implements it) and the constants. addon.cc
// exports exactly these; native/api.ts gives the functions their types
// (test/unit/native.test.ts checks both lists name the same functions), and
// `mmapkit build` reads the constants' names from here into TypeScript.
#pragma once

#include <napi.h>

// X(name in JavaScript, C++ function), grouped by the file that defines them.
#define MMAPKIT_NATIVE_FUNCTIONS(X)                                          \
  /* syscalls.cc: thin wrappers, one syscall each. */                        \
  X(open, Open)                                                              \
  X(close, Close)                                                            \
  X(dup, Dup)                                                                \
  X(mmap, Mmap)                                                              \
  X(munmap, Munmap)                                                          \
  X(mprotect, Mprotect)                                                      \
  X(pageSize, PageSize)                                                      \
  X(minorFaults, MinorFaults)                                                \
  X(majorFaults, MajorFaults)                                                \
  X(finitModule, FinitModule)                                                \
  X(deleteModule, DeleteModule)                                              \
  X(memfdCreate, MemfdCreate)                                                \
  X(ftruncate, Ftruncate)                                                    \
  X(fcntl, Fcntl)                                                            \
  /* open_map.cc: open and mmap in one call. */                              \
  X(openMap, OpenMap)                                                        \
  /* mapping_syscalls.cc: thin wrappers for calls on an existing mapping. */ \
  X(mremap, Mremap)                                                          \
  X(madvise, Madvise)                                                        \
  X(mlock, Mlock)                                                            \
  X(munlock, Munlock)                                                        \
  X(msync, Msync)                                                            \
  X(mincore, Mincore)                                                        \
  X(pipeThrough, PipeThrough)                                                \
  X(pipeInto, PipeInto)                                                      \
  X(futexWait, FutexWait)                                                    \
  /* device_ioctls.cc: the mmapkit devices' ioctls (kmod/uapi/mmapkit.h). */ \
  X(deviceInfo, DeviceInfo)                                                  \
  X(deviceStats, DeviceStats)                                                \
  X(resetStats, ResetStats)                                                  \
  X(pagePfn, PagePfn)                                                        \
  /* generic_ioctl.cc: any ioctl, its argument as bytes (profile setups). */  \
  X(ioctl, Ioctl)                                                            \
  /* pagemap.cc: this process's page-table entries. */                       \
  X(pagemap, Pagemap)                                                        \
  /* memory_access.cc: fault-guarded accesses to mapped memory. */           \
  X(readBytes, ReadBytes)                                                    \
  X(writeBytes, WriteBytes)                                                  \
  X(probe, Probe)                                                            \
  /* child_mapping.cc: a mapping read or written by a second process. */     \
  X(readInChild, ReadInChild)                                                \
  X(readInForkedChild, ReadInForkedChild)                                    \
  X(readInChildAfterUnmap, ReadInChildAfterUnmap)                            \
  X(writeInChild, WriteInChild)                                              \
  /* other_process.cc: this process's memory read for another process. */  \
  X(readAsOtherProcess, ReadAsOtherProcess)                                  \
  X(peekData, PeekData)                                                      \
  /* fork_exit.cc: a child that is forked and exits at once. */              \
  X(forkAndExit, ForkAndExit)                                                \
  /* holders.cc: every process's fds and mappings of some files. */          \
  X(holders, Holders)                                                        \
  /* race_faults.cc, race_mappings.cc: workers racing on one device. */     \
  X(raceFaults, RaceFaults)                                                  \
  X(raceMappings, RaceMappings)                                              \
  /* bench_map.cc, bench_read.cc: the timed loops of `mmapkit bench`. */     \
  X(benchMapTouch, BenchMapTouch)                                            \
  X(benchFill, BenchFill)                                                    \
  X(benchSequentialRead, BenchSequentialRead)                                \
  X(benchRandomRead, BenchRandomRead)                                        \
  X(benchReadSyscall, BenchReadSyscall)                                      \
  X(benchPread, BenchPread)

// X(name): the `constants` object, each name's value from the C headers
// (<sys/mman.h>, <fcntl.h>) this addon is built against.
#define MMAPKIT_NATIVE_CONSTANTS(X) \
  X(PROT_NONE)                      \
  X(PROT_READ)                      \
  X(PROT_WRITE)                     \
  X(PROT_EXEC)                      \
  X(MAP_SHARED)                     \
  X(MAP_PRIVATE)                    \
  X(MAP_SHARED_VALIDATE)            \
  X(MAP_FIXED)                      \
  X(MAP_FIXED_NOREPLACE)            \
  X(MAP_ANONYMOUS)                  \
  X(MAP_POPULATE)                   \
  X(MAP_NORESERVE)                  \
  X(MAP_GROWSDOWN)                  \
  X(MAP_HUGETLB)                    \
  X(MAP_SYNC)                       \
  X(O_RDONLY)                       \
  X(O_WRONLY)                       \
  X(O_RDWR)                         \
  X(O_NONBLOCK)                     \
  X(O_SYNC)                         \
  X(O_CLOEXEC)                      \
  X(MREMAP_MAYMOVE)                 \
  X(MREMAP_FIXED)                   \
  X(MREMAP_DONTUNMAP)               \
  X(MADV_NORMAL)                    \
  X(MADV_DONTNEED)                  \
  X(MADV_FREE)                      \
  X(MADV_DONTFORK)                  \
  X(MADV_DOFORK)                    \
  X(MADV_WILLNEED)                  \
  X(MADV_DODUMP)                    \
  X(MADV_WIPEONFORK)                \
  X(MADV_POPULATE_READ)             \
  X(MS_ASYNC)                       \
  X(MS_SYNC)                        \
  X(MS_INVALIDATE)                  \
  X(MFD_CLOEXEC)                    \
  X(MFD_ALLOW_SEALING)              \
  X(F_ADD_SEALS)                    \
  X(F_GET_SEALS)                    \
  X(F_SEAL_SEAL)                    \
  X(F_SEAL_SHRINK)                  \
  X(F_SEAL_GROW)                    \
  X(F_SEAL_WRITE)

namespace mmapkit {

#define MMAPKIT_DECLARE_FUNCTION(name, function) \
  Napi::Value function(const Napi::CallbackInfo& info);
MMAPKIT_NATIVE_FUNCTIONS(MMAPKIT_DECLARE_FUNCTION)
#undef MMAPKIT_DECLARE_FUNCTION

}  // namespace mmapkit
