#include "errors.h"

#include <uv.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace mmapkit {

// libuv names the codes Node itself reports; for an errno it has no name
// for, it writes "Unknown system error N", which is not a usable code.
std::string ErrnoCode(int err) {
  char name[64];
  uv_err_name_r(-err, name, sizeof name);
  if (std::strncmp(name, "Unknown", 7) == 0) return "E" + std::to_string(err);
  return name;
}

namespace {

std::string ErrnoDescription(int err) {
  char text[128];
  uv_strerror_r(-err, text, sizeof text);
  return text;
}

Napi::Error BuildErrnoError(Napi::Env env, int err, const char* syscall,
                            const std::string& message_suffix) {
  const std::string code = ErrnoCode(err);
  Napi::Error error = Napi::Error::New(
      env, code + ": " + ErrnoDescription(err) + ", " + syscall +
               message_suffix);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  return BuildErrnoError(env, err, syscall, "");
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                       const std::string& path) {
  Napi::Error error = BuildErrnoError(env, err, syscall, " '" + path + "'");
  error.Set("path", Napi::String::New(env, path));
  return error;
}

Napi::Value UndefinedOrThrow(Napi::Env env, long result, const char* syscall) {
  if (result != 0) throw ErrnoError(env, errno, syscall);
  return env.Undefined();
}

Napi::Value AddressOrThrow(Napi::Env env, long result, const char* syscall) {
  if (result == -1) throw ErrnoError(env, errno, syscall);
  return Napi::BigInt::New(env, static_cast<uint64_t>(result));
}

Napi::Error FaultError(Napi::Env env, const Fault& fault) {
  const std::string code =
      fault.stalled ? std::string("ETIMEDOUT") : SignalCode(fault.signo);
  // A stall says what ended it: the time without progress, and the faults
  // taken meanwhile (thousands for a fault retried forever).
  const std::string message =
      fault.stalled ? "ETIMEDOUT: no progress at " + HexAddress(fault.address) +
                          " for " + std::to_string(fault.stalled_ms) +
                          " ms through " + std::to_string(fault.faults) +
                          " faults (a fault retried forever?)"
                    : code + " at " + HexAddress(fault.address);
  Napi::Error error = CodedError(env, code, message);
  error.Set("address",
            Napi::BigInt::New(env, static_cast<uint64_t>(fault.address)));
  return error;
}

Napi::Error CodedError(Napi::Env env, const std::string& code,
                       const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

std::string SignalCode(int signo) {
  const char* abbrev = sigabbrev_np(signo);
  return std::string("SIG") + (abbrev ? abbrev : std::to_string(signo));
}

std::string HexAddress(uint64_t address) {
  char hex[2 + 16 + 1];
  std::snprintf(hex, sizeof hex, "0x%" PRIx64, address);
  return hex;
}

}  // namespace mmapkit
