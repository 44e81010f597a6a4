// Thin wrappers, one syscall each, for what a test does to a mapping after
// mmap(): move or resize it, advise on it, lock it, sync it, ask what of it
// is resident, hand it to a pipe as a syscall's buffer, wait on a futex in
// it. Several lead the kernel back into the driver (a moved or
// split VMA calls vm_ops->open/->close, mlock populates through ->fault),
// which is what the tests of a driver's mmap path are after.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
#include "bindings.h"
#include "child_process.h"
#include "errors.h"
#include "range_call.h"

namespace mmapkit {
namespace {

// Bytes of mincore()'s vector for `length` bytes: one per page, rounding a
// partial last page up (written without the overflow of length + page - 1).
uint64_t PagesSpanned(uint64_t length) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return length / page + (length % page != 0 ? 1 : 0);
}

// A fresh pipe that holds `length` bytes, or a RangeError: more than it
// holds would wait for a reader that is this same thread. 16 pages, or
// one for a user over pipe-user-pages-soft.
Pipe PipeHolding(Napi::Env env, size_t length, const char* name) {
  const Pipe pipe = OpenPipe(env);
  const int holds = fcntl(pipe.write_end, F_GETPIPE_SZ);
  const int size_errno = errno;
  if (holds < 0 || length > static_cast<size_t>(holds)) {
    close(pipe.read_end);
    close(pipe.write_end);
    if (holds < 0) throw ErrnoError(env, size_errno, "fcntl");
    throw Napi::RangeError::New(env, std::string(name) + ": at most " +
                                         std::to_string(holds) +
                                         " bytes, what a pipe holds");
  }
  return pipe;
}

}  // namespace

Napi::Value Mremap(const Napi::CallbackInfo& info) {
  const uint64_t old_addr = ToUint64(info[0], "oldAddr");
  const uint64_t old_size = ToUint64(info[1], "oldSize");
  const uint64_t new_size = ToUint64(info[2], "newSize");
  const int flags = ToInt32(info[3], "flags");
  const uint64_t new_addr =
      info[4].IsUndefined() ? 0 : ToUint64(info[4], "newAddr");
  // The raw syscall, as for mmap: glibc's variadic mremap() reads new_addr
  // only for the flags it knows about, while the kernel should get exactly
  // what the caller passed.
  return AddressOrThrow(
      info.Env(),
      syscall(SYS_mremap, old_addr, old_size, new_size, flags, new_addr),
      "mremap");
}

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  return RangeCall(info, "madvise", "advice", madvise);
}

Napi::Value Mlock(const Napi::CallbackInfo& info) {
  return RangeCall(info, "mlock", mlock);
}

Napi::Value Munlock(const Napi::CallbackInfo& info) {
  return RangeCall(info, "munlock", munlock);
}

Napi::Value Msync(const Napi::CallbackInfo& info) {
  return RangeCall(info, "msync", "flags", msync);
}


Napi::Value PipeThrough(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const size_t length = ToSize(info[1], "length");
  const Pipe pipe = PipeHolding(info.Env(), length, "length");
  // The kernel copies from the mapping itself (copy_from_user in pipe_write).
  const ssize_t written = write(pipe.write_end, ToPointer(addr), length);
  const int write_errno = errno;
  close(pipe.write_end);
  if (written < 0) {
    close(pipe.read_end);
    throw ErrnoError(info.Env(), write_errno, "write");
  }
  // Every byte written is in the pipe; a fault may end the write short.
  Napi::Buffer<uint8_t> bytes =
      Napi::Buffer<uint8_t>::New(info.Env(), static_cast<size_t>(written));
  size_t got = 0;
  while (got < bytes.Length()) {
    const ssize_t n =
        read(pipe.read_end, bytes.Data() + got, bytes.Length() - got);
    if (n <= 0) {
      const int read_errno = n < 0 ? errno : EPIPE;
      close(pipe.read_end);
      throw ErrnoError(info.Env(), read_errno, "read");
    }
    got += static_cast<size_t>(n);
  }
  close(pipe.read_end);
  return bytes;
}

Napi::Value PipeInto(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const uint64_t addr = ToUint64(info[0], "addr");
  const Napi::Uint8Array data = ToBytes(info[1], "data");
  const Pipe pipe = PipeHolding(env, data.ByteLength(), "data");
  const ssize_t written = write(pipe.write_end, data.Data(), data.ByteLength());
  const int write_errno = errno;
  close(pipe.write_end);
  if (written != static_cast<ssize_t>(data.ByteLength())) {
    close(pipe.read_end);
    throw ErrnoError(env, written < 0 ? write_errno : EPIPE, "write");
  }
  // The kernel copies into the mapping itself (copy_to_user in pipe_read).
  const ssize_t n = read(pipe.read_end, ToPointer(addr), data.ByteLength());
  const int read_errno = errno;
  close(pipe.read_end);
  if (n < 0) throw ErrnoError(env, read_errno, "read");
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value FutexWait(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const uint64_t addr = ToUint64(info[0], "addr");
  const uint32_t value = static_cast<uint32_t>(ToInt32(info[1], "value"));
  const int32_t timeout_ms = ToInt32(info[2], "timeoutMs");
  // The wait holds the agent's thread: a word that does hold `value` waits
  // the whole timeout.
  if (timeout_ms < 0 || timeout_ms > 1000) {
    throw Napi::RangeError::New(env, "timeoutMs: 0 to 1000");
  }
  struct timespec timeout = {timeout_ms / 1000,
                             static_cast<long>(timeout_ms % 1000) * 1000000L};
  // Not FUTEX_PRIVATE_FLAG: a shared futex's key is the page's, which
  // get_futex_key finds with GUP.
  return UndefinedOrThrow(
      env,
      syscall(SYS_futex, addr, FUTEX_WAIT, value, &timeout, nullptr, 0),
      "futex");
}

Napi::Value Mincore(const Napi::CallbackInfo& info) {
  const Range range = ToRange(info);
  // Sized before the call: the kernel writes one byte per page and trusts
  // the vector to be that long.
  Napi::Buffer<uint8_t> vec =
      Napi::Buffer<uint8_t>::New(info.Env(), PagesSpanned(range.length));
  if (mincore(range.addr, range.length, vec.Data()) != 0) {
    throw ErrnoError(info.Env(), errno, "mincore");
  }
  return vec;
}

}  // namespace mmapkit
