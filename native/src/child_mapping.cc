// readInChild, readInForkedChild and readInChildAfterUnmap: read a mapping
// from a second process, so a test can check that data written through one
// process's mapping is seen by another, whether that process maps the file
// itself or inherits the parent's mapping across fork(), and whether the
// parent still maps it while the child reads. writeInChild: the other way,
// a second process writing through a mapping of its own.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "bindings.h"
#include "child_process.h"
#include "errors.h"

namespace mmapkit {
namespace {

// The calls a readInChild or writeInChild child reports failing (its
// ChildReport). A reader's bytes follow a report of none; a writer reports
// after its write.
enum Call : int32_t { kNone = 0, kOpen = 1, kMmap = 2 };

struct ChildRequest {
  const char* path;  // opened by the child, unless `fd` is one it inherited
  int fd;
  uint64_t offset;
  size_t length;
  uint64_t map_length;  // length rounded up to whole pages
  const uint8_t* data;  // writeInChild: the bytes to write; else nullptr
};

// ---- Child side (see child_process.h for the rules).

// Maps the request's range (read-only to read it, read-write to write it);
// -1, with why reported and the child's exit status in *failed, if it
// cannot.
long MapForRequest(int out, const ChildRequest& request, int* failed) {
  const bool writes = request.data != nullptr;
  const int fd =
      request.fd >= 0
          ? request.fd
          : open(request.path, (writes ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    *failed = SendReport(out, kOpen, errno, nullptr, 0);
    return -1;
  }
  const long addr =
      syscall(SYS_mmap, 0UL, request.map_length,
              writes ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
              request.offset);
  if (addr == -1) *failed = SendReport(out, kMmap, errno, nullptr, 0);
  return addr;
}

int MapAndCopy(int out, const ChildRequest& request) {
  int failed = 0;
  const long addr = MapForRequest(out, request, &failed);
  if (addr == -1) return failed;
  const bool sent =
      SendReportHeader(out, kNone, 0, request.length) &&
      CopyToPipe(out, reinterpret_cast<const uint8_t*>(addr), request.length);
  return sent ? 0 : kExitPipeFailed;
}

// A userspace copy, as CopyToPipe's: a fault kills the child by its signal.
// The report follows the write, so that a child that died writing sent none.
int MapAndWrite(int out, const ChildRequest& request) {
  int failed = 0;
  const long addr = MapForRequest(out, request, &failed);
  if (addr == -1) return failed;
  std::memcpy(reinterpret_cast<uint8_t*>(addr), request.data, request.length);
  return SendReport(out, kNone, 0, nullptr, 0);
}

// ---- Parent side.

// Turns what readInChild's (or writeInChild's) child sent and how it ended
// into the result or an error.
Napi::Value InterpretMapped(Napi::Env env, const std::string& path,
                            const std::vector<uint8_t>& buffer,
                            const ChildOutcome& outcome, bool writes = false) {
  const ChildReport report =
      ReadReport(env, buffer, outcome,
                 (writes ? "writing '" : "reading '") + path + "'",
                 writes ? "writeInChild" : "readInChild");
  if (report.call == kOpen) throw ErrnoError(env, report.err, "open", path);
  if (report.call == kMmap) throw ErrnoError(env, report.err, "mmap");
  if (writes) return env.Undefined();
  return Napi::Buffer<uint8_t>::Copy(env, buffer.data() + sizeof report,
                                     report.length);
}

// The same for readInForkedChild and readInChildAfterUnmap, whose children
// send the bytes alone. `where` names what the child read.
Napi::Value InterpretInherited(Napi::Env env, const std::string& where,
                               const std::vector<uint8_t>& buffer,
                               const ChildOutcome& outcome, const char* call) {
  if (WIFSIGNALED(outcome.status)) {
    throw ChildSignalError(env, WTERMSIG(outcome.status), "reading " + where);
  }
  if (WEXITSTATUS(outcome.status) != 0 || outcome.received != buffer.size()) {
    throw ChildExitError(env, outcome.status, outcome.received, buffer.size(),
                         call);
  }
  return Napi::Buffer<uint8_t>::Copy(env, buffer.data(), buffer.size());
}

// Exit status of readInChildAfterUnmap's child when the parent sent no go
// (its munmap failed): nothing was read.
constexpr int kExitNoGo = 3;

// readInChildAfterUnmap's child: waits for the parent's go byte, then copies
// the inherited range `passes` times.
int CopyAfterGo(int out, int go, const uint8_t* mapping, size_t length,
                uint32_t passes) {
  char byte = 0;
  ssize_t n;
  do {
    n = read(go, &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return kExitNoGo;
  for (uint32_t pass = 0; pass < passes; pass++) {
    if (!CopyToPipe(out, mapping, length)) return kExitPipeFailed;
  }
  return 0;
}

uint64_t RoundUpToPage(uint64_t length) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return (length + page - 1) / page * page;
}

}  // namespace

namespace {

// readInChild's and writeInChild's first argument: a path the child opens,
// or an fd it inherits. `name` is what messages call it.
struct Target {
  int fd;  // -1: open `name`
  std::string name;
};

Target ToTarget(const Napi::Value& value) {
  // The child maps the fd fork() gave it: the same open file, for objects
  // that a second open() of their node does not reach (a DRM fake offset
  // belongs to its drm_file; a dma-buf has no node).
  if (value.IsNumber()) {
    const int fd = ToInt32(value, "fd");
    return {fd, "fd " + std::to_string(fd)};
  }
  return {-1, ToPath(value, "target")};
}

}  // namespace

Napi::Value ReadInChild(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Target target = ToTarget(info[0]);
  const uint64_t offset = ToUint64(info[1], "offset");
  const size_t length = ToSize(info[2], "length");
  const ChildRequest request{target.name.c_str(), target.fd, offset, length,
                             RoundUpToPage(length), nullptr};
  std::vector<uint8_t> buffer(sizeof(ChildReport) + length);
  const ChildOutcome outcome = RunInChild(
      env, buffer, [&request](int out) { return MapAndCopy(out, request); });
  return InterpretMapped(env, target.name, buffer, outcome);
}

Napi::Value WriteInChild(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Target target = ToTarget(info[0]);
  const uint64_t offset = ToUint64(info[1], "offset");
  const Napi::Uint8Array data = ToBytes(info[2], "data");
  if (data.ByteLength() == 0) {
    throw Napi::RangeError::New(env, "data: at least one byte");
  }
  // The child writes from its copy of this buffer, which fork() gave it.
  const ChildRequest request{target.name.c_str(), target.fd, offset,
                             data.ByteLength(), RoundUpToPage(data.ByteLength()),
                             data.Data()};
  std::vector<uint8_t> buffer(sizeof(ChildReport));
  const ChildOutcome outcome = RunInChild(
      env, buffer, [&request](int out) { return MapAndWrite(out, request); });
  return InterpretMapped(env, target.name, buffer, outcome, true);
}

// readInForkedChild's addresses: one BigInt, or an array of them.
std::vector<uint64_t> ToAddresses(const Napi::Value& value) {
  if (!value.IsArray()) return {ToUint64(value, "addr")};
  const Napi::Array array = value.As<Napi::Array>();
  std::vector<uint64_t> addrs;
  for (uint32_t i = 0; i < array.Length(); i++) {
    addrs.push_back(ToUint64(array.Get(i), "addr"));
  }
  if (addrs.empty()) {
    throw Napi::RangeError::New(value.Env(), "addr: an empty array");
  }
  return addrs;
}

Napi::Value ReadInForkedChild(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::vector<uint64_t> addrs = ToAddresses(info[0]);
  const size_t length = ToSize(info[1], "length");
  std::vector<uint8_t> buffer(length * addrs.size());
  // The child reads the copy of the parent's mapping that fork() gave it:
  // no open or mmap of its own, so what is seen is what the kernel (and a
  // driver's vm_ops->open) made of the inherited VMA. One child reads every
  // address: a fork under TCG costs about 65 ms.
  const ChildOutcome outcome =
      RunInChild(env, buffer, [&addrs, length](int out) {
        for (const uint64_t addr : addrs) {
          const auto* at = reinterpret_cast<const uint8_t*>(addr);
          if (!CopyToPipe(out, at, length)) return kExitPipeFailed;
        }
        return 0;
      });
  const std::string where =
      HexAddress(addrs.front()) +
      (addrs.size() > 1
           ? " and " + std::to_string(addrs.size() - 1) + " more addresses"
           : "");
  return InterpretInherited(env, where, buffer, outcome, "readInForkedChild");
}

Napi::Value ReadInChildAfterUnmap(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Range range = ToRange(info);
  const uint32_t passes = static_cast<uint32_t>(ToInt32(info[2], "passes"));
  if (passes < 1 || passes > 16) {
    throw Napi::RangeError::New(env, "passes must be 1 to 16");
  }
  const size_t length = static_cast<size_t>(range.length);
  std::vector<uint8_t> buffer(length * passes);
  const Pipe pipe = OpenPipe(env);
  Pipe go{-1, -1};
  try {
    go = OpenPipe(env);
  } catch (...) {
    close(pipe.read_end);
    close(pipe.write_end);
    throw;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    close(go.write_end);
    const int out = EnterChild(pipe);
    _exit(CopyAfterGo(out, go.read_end,
                      static_cast<const uint8_t*>(range.addr), length,
                      passes));
  }
  // The child holds the only copy of the mapping once ours is gone: it is
  // told to read only after the munmap, so that whatever the driver did
  // when this process's VMA closed has happened by then.
  const int fork_err = errno;
  close(go.read_end);
  int unmap_err = 0;
  if (pid > 0) {
    if (munmap(range.addr, length) != 0) {
      unmap_err = errno;
    } else if (!WriteAll(go.write_end, "g", 1)) {
      unmap_err = errno;
    }
  }
  close(go.write_end);
  errno = fork_err;  // CollectChild reports a failed fork by errno
  const ChildOutcome outcome = CollectChild(env, pid, pipe, buffer);
  if (unmap_err != 0) throw ErrnoError(env, unmap_err, "munmap");
  return InterpretInherited(
      env, HexAddress(reinterpret_cast<uint64_t>(range.addr)), buffer, outcome,
      "readInChildAfterUnmap");
}

}  // namespace mmapkit
