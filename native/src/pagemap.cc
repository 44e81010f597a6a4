// pagemap: this process's /proc/self/pagemap entry for an address, so tests
// can see whether a page is mapped in and which PFN backs it (the entry is
// decoded in TypeScript, decodePagemap in native/index.ts).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "args.h"
#include "bindings.h"
#include "errors.h"

namespace mmapkit {
namespace {

constexpr char kPagemapPath[] = "/proc/self/pagemap";

// Opened on first use and kept open: tests read entries in loops. Atomic
// because worker threads may make their first call at the same time.
std::atomic<int> pagemap_fd{-1};

int PagemapFd(Napi::Env env) {
  const int current = pagemap_fd.load();
  if (current >= 0) return current;
  // "self" is resolved here, once: the fd keeps naming this process, which
  // is what every later call in this process wants.
  const int fd = open(kPagemapPath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ErrnoError(env, errno, "open", kPagemapPath);
  int expected = -1;
  if (pagemap_fd.compare_exchange_strong(expected, fd)) return fd;
  close(fd);  // another thread got there first; use its fd
  return expected;
}

// The entry's offset in the file: one 8-byte entry per virtual page. At
// most 2^64 / 4096 * 8 = 2^56, well inside off_t.
off_t EntryOffset(uint64_t addr) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return static_cast<off_t>(addr / page * sizeof(uint64_t));
}

}  // namespace

Napi::Value Pagemap(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const uint64_t addr = ToUint64(info[0], "addr");
  const int fd = PagemapFd(env);
  uint64_t entry = 0;
  ssize_t n;
  do {
    n = pread(fd, &entry, sizeof entry, EntryOffset(addr));
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw ErrnoError(env, errno, "pread", kPagemapPath);
  // The file ends where the user address space does: a short read means
  // addr lies beyond it.
  if (n != static_cast<ssize_t>(sizeof entry)) {
    throw ErrnoError(env, EINVAL, "pread", kPagemapPath);
  }
  return Napi::BigInt::New(env, entry);
}

}  // namespace mmapkit
