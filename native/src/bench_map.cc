// `mmapkit bench`: the cost of getting a buffer mapped, mmap() plus the
// first touch of every page, and filling it with a known pattern.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
#include "bench.h"
#include "bindings.h"
#include "errors.h"

namespace mmapkit {
namespace {

struct TouchLoop {
  uintptr_t addr;
  size_t length;
  size_t page;
  bool write;
  uint64_t ns;
};

// One aligned 8-byte access at the start of every page: a volatile load
// for 'read'; for 'write' a store of 0, with no load before it, so that the
// first fault is a write fault on every CPU model. (A load, or a read-
// modify-write, which QEMU's non-parallel TCG, as under -icount, splits
// into a load and a store, would first map the zero page of anonymous
// memory and take a second, copy-on-write fault.) The page's first word is
// not preserved: benchFill writes the pattern the read loops check.
void Touch(void* context) {
  TouchLoop* loop = static_cast<TouchLoop*>(context);
  const uint64_t start = bench::NowNs();
  for (size_t offset = 0; offset < loop->length; offset += loop->page) {
    volatile uint64_t* word =
        reinterpret_cast<volatile uint64_t*>(loop->addr + offset);
    if (loop->write) {
      *word = 0;
    } else {
      static_cast<void>(*word);
    }
  }
  loop->ns = bench::NowNs() - start;
}

struct FillLoop {
  uintptr_t addr;
  size_t words;
  uint64_t seed;
};

void Fill(void* context) {
  const FillLoop* loop = static_cast<const FillLoop*>(context);
  volatile uint64_t* words = reinterpret_cast<volatile uint64_t*>(loop->addr);
  for (size_t i = 0; i < loop->words; ++i) {
    words[i] = bench::PatternWord(loop->seed, i);
  }
}

// mmap() of `length` bytes of `target`, timed: 'anon' for private anonymous
// memory, else a path opened O_RDWR and mapped MAP_SHARED from offset 0.
struct Mapped {
  uintptr_t addr;
  uint64_t ns;
};

Mapped MapTarget(Napi::Env env, const std::string& target, size_t length) {
  const int prot = PROT_READ | PROT_WRITE;
  if (target == "anon") {
    const uint64_t start = bench::NowNs();
    void* addr = mmap(nullptr, length, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const uint64_t ns = bench::NowNs() - start;
    if (addr == MAP_FAILED) throw ErrnoError(env, errno, "mmap");
    // 4 KiB pages, like every other strategy (a PFN mapping has no huge
    // pages): untimed, as it is a choice of the benchmark, not a cost.
    if (madvise(addr, length, MADV_NOHUGEPAGE) != 0) {
      const int err = errno;
      munmap(addr, length);
      throw ErrnoError(env, err, "madvise");
    }
    return {reinterpret_cast<uintptr_t>(addr), ns};
  }
  const int fd = open(target.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw ErrnoError(env, errno, "open", target);
  const uint64_t start = bench::NowNs();
  void* addr = mmap(nullptr, length, prot, MAP_SHARED, fd, 0);
  const uint64_t ns = bench::NowNs() - start;
  const int err = errno;
  close(fd);  // the mapping holds the file
  if (addr == MAP_FAILED) throw ErrnoError(env, err, "mmap");
  return {reinterpret_cast<uintptr_t>(addr), ns};
}

}  // namespace

Napi::Value BenchMapTouch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string target = ToPath(info[0], "target");
  const size_t length = ToSize(info[1], "length");
  const bool write = ToIsWrite(info[2], "access");
  if (length == 0) throw Napi::RangeError::New(env, "length must be > 0");

  const bench::Faults before = bench::ThreadFaults();
  const Mapped mapped = MapTarget(env, target, length);
  TouchLoop loop = {mapped.addr, length,
                    static_cast<size_t>(sysconf(_SC_PAGESIZE)), write, 0};
  Fault fault;
  if (!GuardedCall(Touch, &loop, &fault)) {
    munmap(ToPointer(mapped.addr), length);
    throw FaultError(env, fault);
  }
  const bench::Faults faults = bench::FaultsSince(before);

  Napi::Object result = Napi::Object::New(env);
  result.Set("addr", Napi::BigInt::New(env, static_cast<uint64_t>(mapped.addr)));
  result.Set("mmapNs", Napi::Number::New(env, static_cast<double>(mapped.ns)));
  result.Set("touchNs", Napi::Number::New(env, static_cast<double>(loop.ns)));
  result.Set("minorFaults",
             Napi::Number::New(env, static_cast<double>(faults.minor)));
  result.Set("majorFaults",
             Napi::Number::New(env, static_cast<double>(faults.major)));
  return result;
}

Napi::Value BenchFill(const Napi::CallbackInfo& info) {
  FillLoop loop = {ToUint64(info[0], "addr"),
                   ToSize(info[1], "length") / sizeof(uint64_t),
                   static_cast<uint64_t>(ToSize(info[2], "seed"))};
  bench::RunGuardedOrThrow(info.Env(), Fill, &loop);
  return info.Env().Undefined();
}

}  // namespace mmapkit
