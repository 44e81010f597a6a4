// openMap: open() and mmap() in one call, for the common case of a test
// that maps a device node it has just opened. Each call from the host is a
// round trip to the guest agent, and this pair is the most frequent one;
// the two syscalls are made exactly as open and mmap make them.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "args.h"
#include "bindings.h"
#include "errors.h"

namespace mmapkit {

Napi::Value OpenMap(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::string path = ToPath(info[0], "path");
  const int open_flags = ToInt32(info[1], "openFlags");
  const uint64_t length = ToUint64(info[2], "length");
  const int prot = ToInt32(info[3], "prot");
  const int flags = ToInt32(info[4], "flags");
  const uint64_t offset = ToUint64(info[5], "offset");
  // As open does: O_CLOEXEC, so a spawned child never inherits the device,
  // and Node's mode for an O_CREAT.
  const int fd = open(path.c_str(), open_flags | O_CLOEXEC, 0666);
  if (fd < 0) throw ErrnoError(env, errno, "open", path);
  // As mmap does: the raw syscall, the offset handed over unchanged.
  const long addr = syscall(SYS_mmap, 0UL, length, prot, flags, fd, offset);
  if (addr == -1) {
    const int err = errno;
    // The caller never saw this fd: a refused mapping leaves nothing open.
    close(fd);
    throw ErrnoError(env, err, "mmap");
  }
  Napi::Object mapped = Napi::Object::New(env);
  mapped.Set("fd", Napi::Number::New(env, fd));
  mapped.Set("addr", Napi::BigInt::New(env, static_cast<uint64_t>(addr)));
  return mapped;
}

}  // namespace mmapkit
