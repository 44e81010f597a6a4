#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "args.h"
#include "bindings.h"
#include "errors.h"
#include "range_call.h"

namespace mmapkit {
namespace {

// Same default as Node's fs.openSync when the caller passes O_CREAT.
constexpr mode_t kCreateMode = 0666;

// getrusage(RUSAGE_SELF), which cannot fail with valid arguments but is
// checked all the same.
struct rusage SelfUsage(Napi::Env env) {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) {
    throw ErrnoError(env, errno, "getrusage");
  }
  return usage;
}

}  // namespace

Napi::Value Open(const Napi::CallbackInfo& info) {
  const std::string path = ToPath(info[0], "path");
  const int flags = ToInt32(info[1], "flags");
  // O_CLOEXEC: a child spawned by this process must not inherit the device.
  const int fd = open(path.c_str(), flags | O_CLOEXEC, kCreateMode);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "open", path);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Dup(const Napi::CallbackInfo& info) {
  // F_DUPFD_CLOEXEC: like open(), a spawned child must not inherit it; a
  // forked one (readInChild of an fd) does, as fork() keeps every fd.
  const int fd = fcntl(ToInt32(info[0], "fd"), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "dup");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  // No retry on EINTR: Linux has released the fd by then, and a retry
  // could close an fd another thread was just given.
  return UndefinedOrThrow(info.Env(), close(ToInt32(info[0], "fd")), "close");
}

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const uint64_t length = ToUint64(info[1], "length");
  const int prot = ToInt32(info[2], "prot");
  const int flags = ToInt32(info[3], "flags");
  const int fd = ToInt32(info[4], "fd");
  const uint64_t offset = ToUint64(info[5], "offset");
  // The raw syscall, not glibc's mmap(): its off_t is signed and the
  // wrapper may vet or adjust the offset, while the point here is to hand
  // the driver exactly the unsigned long the caller asked for.
  return AddressOrThrow(
      info.Env(), syscall(SYS_mmap, addr, length, prot, flags, fd, offset),
      "mmap");
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  return RangeCall(info, "munmap", munmap);
}

Napi::Value Mprotect(const Napi::CallbackInfo& info) {
  return RangeCall(info, "mprotect", "prot", mprotect);
}

Napi::Value PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           static_cast<double>(sysconf(_SC_PAGESIZE)));
}

Napi::Value MinorFaults(const Napi::CallbackInfo& info) {
  const struct rusage usage = SelfUsage(info.Env());
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(usage.ru_minflt));
}

Napi::Value MajorFaults(const Napi::CallbackInfo& info) {
  const struct rusage usage = SelfUsage(info.Env());
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(usage.ru_majflt));
}

Napi::Value FinitModule(const Napi::CallbackInfo& info) {
  const int fd = ToInt32(info[0], "fd");
  const std::string params = ToName(info[1], "params");
  const int flags = ToInt32(info[2], "flags");
  // The call insmod makes, without insmod: no process to start (under TCG
  // each is a fork of the agent, and the first after a restore reads the
  // tool's libraries over 9p), and the kernel's errno as it is.
  return UndefinedOrThrow(
      info.Env(), syscall(SYS_finit_module, fd, params.c_str(), flags),
      "finit_module");
}

Napi::Value DeleteModule(const Napi::CallbackInfo& info) {
  const std::string name = ToName(info[0], "name");
  const int flags = ToInt32(info[1], "flags");
  // The raw syscall (glibc has no wrapper), so a test sees the kernel's own
  // errno, e.g. EWOULDBLOCK for O_NONBLOCK while the module is in use,
  // instead of whatever rmmod prints about it.
  return UndefinedOrThrow(
      info.Env(), syscall(SYS_delete_module, name.c_str(), flags),
      "delete_module");
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  const std::string name = ToName(info[0], "name");
  const int flags = ToInt32(info[1], "flags");
  // MFD_CLOEXEC always, as open() adds O_CLOEXEC: a spawned child must not
  // inherit memory a setup hands to a driver (udmabuf).
  const int fd = memfd_create(name.c_str(), flags | MFD_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "memfd_create");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  const int fd = ToInt32(info[0], "fd");
  const uint64_t length = ToUint64(info[1], "length");
  // off_t is signed: a length past its range is the kernel's EINVAL, not a wrap.
  if (length > static_cast<uint64_t>(INT64_MAX)) {
    throw ErrnoError(info.Env(), EINVAL, "ftruncate");
  }
  return UndefinedOrThrow(info.Env(),
                          ftruncate(fd, static_cast<off_t>(length)),
                          "ftruncate");
}

Napi::Value Fcntl(const Napi::CallbackInfo& info) {
  const int fd = ToInt32(info[0], "fd");
  const int cmd = ToInt32(info[1], "cmd");
  const int arg = ToInt32(info[2], "arg");
  // Commands with an int argument only (F_ADD_SEALS, F_GET_SEALS,
  // F_GETFL...): a pointer argument has no place in this signature.
  const int result = fcntl(fd, cmd, arg);
  if (result < 0) throw ErrnoError(info.Env(), errno, "fcntl");
  return Napi::Number::New(info.Env(), result);
}

}  // namespace mmapkit
