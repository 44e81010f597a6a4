// raceFaults: first-touch faults on a device from several workers at the
// same moment, round after round, each round on fresh mappings (no PTE
// yet), each worker checking that every page it touched holds its own
// index (the page-index pattern, device.ts pagePattern). ->fault runs
// concurrently for different threads of one process (handle_mm_fault under
// mmap_lock held for read, 6.1; under the per-VMA lock, lock_vma_under_rcu,
// 6.12) and for different processes: a driver that keeps the page it is
// serving in shared state maps the wrong page (catalogue J7, taxonomy #19).
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
#include "bindings.h"
#include "race_group.h"

namespace mmapkit {
namespace {

using race::Block;
using race::Step;
using race::Worker;

struct FaultSpec {
  int fd;
  uint64_t offset;
  uint64_t length;
  uint64_t page;
  int32_t first_index;  // the pattern index of the page at `offset`
  bool distinct;        // worker w touches pages w, w + n, ...; else all of them
  bool write;           // a write fault (a locked add of 0) instead of a load
  bool processes;       // each worker maps its own, else worker 0 maps for all
  int32_t rounds;
  // Rounds go on past `rounds` until the workers' touches overlapped this
  // often (Worker::overlapped), as long as the time cap allows and no page
  // was wrong: one wrong page is the answer, more rounds add nothing to it.
  uint32_t min_overlaps;
  int64_t stop_ms;      // no round starts after this
};

void SetStep(Worker& me, Step step) {
  me.step.store(static_cast<int32_t>(step), std::memory_order_relaxed);
}

// Read by worker 0 between rounds: every worker's count is final once all
// of them reached the start line (StartLine::Wait orders it).
bool AnyWrongPage(const Block& block) {
  for (int w = 0; w < block.workers; ++w) {
    if (block.worker[w].wrong_count != 0) return true;
  }
  return false;
}

void FaultWorker(Block& block, int w, const void* raw) {
  const FaultSpec& spec = *static_cast<const FaultSpec*>(raw);
  Worker& me = block.worker[w];
  race::EnterWorker(block, w);
  const bool maps = spec.processes || w == 0;
  const uint64_t pages = spec.length / spec.page;
  const size_t words = spec.page / sizeof(uint64_t);
  for (int32_t round = 0;; ++round) {
    me.round.store(round, std::memory_order_relaxed);
    SetStep(me, Step::kWaiting);
    if (w == 0) {
      const bool wanted =
          round < spec.rounds ||
          race::SumOverWorkers(block, &Worker::overlapped) < spec.min_overlaps;
      block.go.store(wanted && !AnyWrongPage(block) &&
                     race::NowMs() < spec.stop_ms && block.failed.load() == 0);
    }
    block.line.Wait();
    if (block.go.load() == 0) break;
    uint64_t addr = 0;
    if (maps) {
      SetStep(me, Step::kMapping);
      const long mapped =
          syscall(SYS_mmap, 0UL, spec.length,
                  spec.write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                  spec.fd, spec.offset);
      if (mapped == -1) {
        race::Count(me, race::Op::kMmap, errno);
        block.failed.store(1);
      } else {
        addr = static_cast<uint64_t>(mapped);
      }
      if (!spec.processes) block.addr.store(addr);
    }
    SetStep(me, Step::kWaiting);
    block.line.Wait();  // the start line: every worker faults from here
    if (!spec.processes) addr = block.addr.load();
    ++me.iterations;
    if (addr != 0) {
      SetStep(me, Step::kTouching);
      const uint64_t step = spec.distinct ? block.workers : 1;
      for (uint64_t p = spec.distinct ? w : 0; p < pages; p += step) {
        me.page.store(static_cast<int32_t>(p), std::memory_order_relaxed);
        const uint32_t others_before =
            race::SumOverWorkers(block, &Worker::touched, w);
        uint64_t* words_at = reinterpret_cast<uint64_t*>(addr + p * spec.page);
        if (spec.write) {
          // A store that leaves the word as it is: the first access is
          // a write fault (do_shared_fault), and a wrong page stays wrong
          // for the check below rather than being overwritten.
          __atomic_fetch_add(words_at, 0, __ATOMIC_RELAXED);
        } else {
          (void)*static_cast<volatile uint64_t*>(words_at);
        }
        race::CheckPage(me, round, spec.first_index + static_cast<int32_t>(p),
                        words_at, words);
        if (race::SumOverWorkers(block, &Worker::touched, w) != others_before) {
          me.overlapped.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
    SetStep(me, Step::kWaiting);
    block.line.Wait();
    if (maps && addr != 0) {
      SetStep(me, Step::kUnmapping);
      if (syscall(SYS_munmap, addr, spec.length) != 0) {
        race::Count(me, race::Op::kMunmap, errno);
      }
    }
  }
  SetStep(me, Step::kDone);
}

int32_t Int32Field(const Napi::Object& object, const char* name) {
  return ToInt32(object.Get(name), name);
}

uint32_t MinOverlaps(const Napi::Object& options) {
  const Napi::Value value = options.Get("minOverlaps");
  if (value.IsUndefined()) return 0;
  const int32_t count = ToInt32(value, "minOverlaps");
  if (count < 0) {
    throw Napi::RangeError::New(options.Env(), "minOverlaps must be >= 0");
  }
  return static_cast<uint32_t>(count);
}

}  // namespace

Napi::Value RaceFaults(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int fd = ToInt32(info[0], "fd");
  const uint64_t offset = ToUint64(info[1], "offset");
  const uint64_t length = ToUint64(info[2], "length");
  if (!info[3].IsObject()) {
    throw Napi::TypeError::New(env, "spec must be an object");
  }
  const Napi::Object options = info[3].As<Napi::Object>();
  const std::string pages = ToName(options.Get("pages"), "pages");
  if (pages != "same" && pages != "distinct") {
    throw Napi::TypeError::New(env, "pages must be 'same' or 'distinct'");
  }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (length == 0 || length % page != 0) {
    throw Napi::RangeError::New(env, "length must be a positive page multiple");
  }
  const int32_t time_limit_ms = Int32Field(options, "timeLimitMs");
  const int64_t start = race::NowMs();
  const FaultSpec spec{fd,
                       offset,
                       length,
                       page,
                       Int32Field(options, "firstIndex"),
                       pages == "distinct",
                       ToIsWrite(options.Get("access"), "access"),
                       options.Get("processes").ToBoolean().Value(),
                       Int32Field(options, "rounds"),
                       MinOverlaps(options),
                       start + time_limit_ms};
  const race::GroupSpec group{Int32Field(options, "workers"), spec.processes,
                              // A round under way when the time is up
                              // finishes; a hang is one that does not.
                              start + time_limit_ms + race::kHangAfterMs,
                              "raceFaults"};
  Block* block = race::RunGroup(env, group, FaultWorker, &spec);
  Napi::Object result = Napi::Object::New(env);
  result.Set("rounds", block->worker[0].iterations);
  result.Set("failed", block->failed.load() != 0);
  result.Set("workers", race::WorkersToJs(env, *block));
  race::FreeBlock(block);
  return result;
}

}  // namespace mmapkit
