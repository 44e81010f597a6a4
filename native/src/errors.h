// Errors thrown to JavaScript, shaped like Node's own fs errors so callers
// can handle native failures with the same code/errno/syscall checks.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "fault_guard.h"

namespace mmapkit {

// "EINVAL: invalid argument, mmap" with code, errno (negative) and syscall.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// As above, for calls that take a path: "ENOENT: ..., open '/x'" plus `path`.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                       const std::string& path);

// What a call that returns 0, or -1 with errno, gives JavaScript:
// undefined, or the ErrnoError of `syscall`.
Napi::Value UndefinedOrThrow(Napi::Env env, long result, const char* syscall);

// The same for a raw syscall that returns an address: the address as a BigInt.
Napi::Value AddressOrThrow(Napi::Env env, long result, const char* syscall);

// A fault caught during a guarded access: "SIGBUS at 0x..." with `address`;
// for a stalled one, code ETIMEDOUT and where it stalled.
Napi::Error FaultError(Napi::Env env, const Fault& fault);

// An error that has a code but no errno, e.g. a child killed by a signal.
Napi::Error CodedError(Napi::Env env, const std::string& code,
                       const std::string& message);

// "EINVAL", "EAGAIN", ... as used for `code` on errno errors.
std::string ErrnoCode(int err);

// "SIGBUS", "SIGSEGV", ... as used for `code` on signal errors.
std::string SignalCode(int signo);

// "0x7f12345000", as addresses appear in messages.
std::string HexAddress(uint64_t address);

}  // namespace mmapkit
