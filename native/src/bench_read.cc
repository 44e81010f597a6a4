// `mmapkit bench`: reading a buffer, through a mapping (8-byte loads) or
// with read()/pread(), sequentially or at random 8-byte offsets. Every loop
// sums the words it reads, so two ways of reading the same bytes must give
// the same checksum.
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "args.h"
#include "bench.h"
#include "bindings.h"
#include "errors.h"

namespace mmapkit {
namespace {

using bench::Timing;

// Sums `words` 8-byte words at `addr`: volatile loads, so each one is a
// real 8-byte load (no vectorising, no skipping), four sums in flight.
uint64_t SumWords(const volatile uint64_t* words, size_t count) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    a += words[i];
    b += words[i + 1];
    c += words[i + 2];
    d += words[i + 3];
  }
  for (; i < count; ++i) a += words[i];
  return a + b + c + d;
}

// A whole number of 8-byte words, at least one.
size_t ToWords(const Napi::Value& value, const char* name) {
  const size_t bytes = ToSize(value, name);
  if (bytes < sizeof(uint64_t) || bytes % sizeof(uint64_t) != 0) {
    throw Napi::RangeError::New(
        value.Env(), std::string(name) + " must be a positive multiple of 8");
  }
  return bytes / sizeof(uint64_t);
}

size_t ToCount(const Napi::Value& value, const char* name) {
  const size_t count = ToSize(value, name);
  if (count == 0) {
    throw Napi::RangeError::New(value.Env(), std::string(name) + " must be > 0");
  }
  return count;
}

// The buffer at `addr`, as the mapping loops load it.
const volatile uint64_t* ToWordsAt(const Napi::Value& addr) {
  return static_cast<const volatile uint64_t*>(
      ToPointer(ToUint64(addr, "addr")));
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

Napi::Value BenchSequentialRead(const Napi::CallbackInfo& info) {
  const volatile uint64_t* words = ToWordsAt(info[0]);
  const size_t word_count = ToWords(info[1], "length");
  const size_t passes = ToCount(info[2], "passes");
  const Timing timing = bench::MeasureGuarded(info.Env(), [&] {
    uint64_t sum = 0;
    for (size_t pass = 0; pass < passes; ++pass) {
      sum += SumWords(words, word_count);
    }
    return sum;
  });
  return bench::TimingObject(info.Env(), timing);
}

Napi::Value BenchRandomRead(const Napi::CallbackInfo& info) {
  const volatile uint64_t* words = ToWordsAt(info[0]);
  const size_t word_count = ToWords(info[1], "length");
  const size_t loads = ToCount(info[2], "count");
  const uint64_t seed = static_cast<uint64_t>(ToSize(info[3], "seed"));
  const Timing timing = bench::MeasureGuarded(info.Env(), [&] {
    bench::Random random(seed);  // not captured: its state stays in a register
    uint64_t sum = 0;
    for (size_t i = 0; i < loads; ++i) {
      sum += words[random.Next() % word_count];
    }
    return sum;
  });
  return bench::TimingObject(info.Env(), timing);
}

Napi::Value BenchReadSyscall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ToInt32(info[0], "fd");
  const size_t length = ToWords(info[1], "length") * sizeof(uint64_t);
  const size_t buffer_size = ToWords(info[2], "bufferSize") * sizeof(uint64_t);
  const size_t passes = ToCount(info[3], "passes");
  // Page aligned and written once before the clock starts, so the loop
  // neither faults on its own buffer nor counts those faults.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::unique_ptr<void, FreeDeleter> holder(
      std::aligned_alloc(page, (buffer_size + page - 1) / page * page));
  if (!holder) throw ErrnoError(env, ENOMEM, "aligned_alloc");
  uint64_t* buffer = static_cast<uint64_t*>(holder.get());
  std::memset(buffer, 0, buffer_size);

  const Timing timing = bench::Measure([&] {
    uint64_t sum = 0;
    for (size_t pass = 0; pass < passes; ++pass) {
      if (lseek(fd, 0, SEEK_SET) != 0) throw ErrnoError(env, errno, "lseek");
      size_t done = 0;
      while (done < length) {
        const size_t want =
            length - done < buffer_size ? length - done : buffer_size;
        const ssize_t got = read(fd, buffer, want);
        if (got < 0) {
          if (errno == EINTR) continue;
          throw ErrnoError(env, errno, "read");
        }
        if (got == 0 || got % sizeof(uint64_t) != 0) {
          throw CodedError(env, "EIO", "read: short read at offset " +
                                           std::to_string(done) + " of " +
                                           std::to_string(length));
        }
        sum += SumWords(buffer, static_cast<size_t>(got) / sizeof(uint64_t));
        done += static_cast<size_t>(got);
      }
    }
    return sum;
  });
  return bench::TimingObject(env, timing);
}

Napi::Value BenchPread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ToInt32(info[0], "fd");
  const size_t words = ToWords(info[1], "length");
  const size_t count = ToCount(info[2], "count");
  const uint64_t seed = static_cast<uint64_t>(ToSize(info[3], "seed"));

  const Timing timing = bench::Measure([&] {
    bench::Random random(seed);  // not captured: its state stays in a register
    uint64_t sum = 0;
    for (size_t i = 0; i < count; ++i) {
      const off_t offset =
          static_cast<off_t>((random.Next() % words) * sizeof(uint64_t));
      uint64_t word;
      const ssize_t got = pread(fd, &word, sizeof word, offset);
      if (got != static_cast<ssize_t>(sizeof word)) {
        if (got < 0) throw ErrnoError(env, errno, "pread");
        throw CodedError(env, "EIO", "pread: short read at offset " +
                                         std::to_string(offset));
      }
      sum += word;
    }
    return sum;
  });
  return bench::TimingObject(env, timing);
}

}  // namespace mmapkit
