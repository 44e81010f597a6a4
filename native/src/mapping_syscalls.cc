// Thin wrappers, one syscall each, for what a test does to a mapping after
// mmap(): move or resize it, advise on it, lock it, sync it, ask what of it
// is resident. Several lead the kernel back into the driver (a moved or
// split VMA calls vm_ops->open/->close, mlock populates through ->fault),
// which is what the tests of a driver's mmap path are after.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "bindings.h"
#include "errors.h"

namespace mmapkit {
namespace {

// Bytes of mincore()'s vector for `length` bytes: one per page, rounding a
// partial last page up (written without the overflow of length + page - 1).
uint64_t PagesSpanned(uint64_t length) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return length / page + (length % page != 0 ? 1 : 0);
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
  const long result =
      syscall(SYS_mremap, old_addr, old_size, new_size, flags, new_addr);
  if (result == -1) throw ErrnoError(info.Env(), errno, "mremap");
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(result));
}

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const uint64_t length = ToUint64(info[1], "length");
  const int advice = ToInt32(info[2], "advice");
  if (madvise(ToPointer(addr), length, advice) != 0) {
    throw ErrnoError(info.Env(), errno, "madvise");
  }
  return info.Env().Undefined();
}

Napi::Value Mlock(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const uint64_t length = ToUint64(info[1], "length");
  if (mlock(ToPointer(addr), length) != 0) {
    throw ErrnoError(info.Env(), errno, "mlock");
  }
  return info.Env().Undefined();
}

Napi::Value Munlock(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const uint64_t length = ToUint64(info[1], "length");
  if (munlock(ToPointer(addr), length) != 0) {
    throw ErrnoError(info.Env(), errno, "munlock");
  }
  return info.Env().Undefined();
}

Napi::Value Msync(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const uint64_t length = ToUint64(info[1], "length");
  const int flags = ToInt32(info[2], "flags");
  if (msync(ToPointer(addr), length, flags) != 0) {
    throw ErrnoError(info.Env(), errno, "msync");
  }
  return info.Env().Undefined();
}

Napi::Value Mincore(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const uint64_t length = ToUint64(info[1], "length");
  // Sized before the call: the kernel writes one byte per page and trusts
  // the vector to be that long.
  Napi::Buffer<uint8_t> vec =
      Napi::Buffer<uint8_t>::New(info.Env(), PagesSpanned(length));
  if (mincore(ToPointer(addr), length, vec.Data()) != 0) {
    throw ErrnoError(info.Env(), errno, "mincore");
  }
  return vec;
}

}  // namespace mmapkit
