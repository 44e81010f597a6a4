// raceMappings: loops of mmap/munmap, mremap, fork and module unload
// attempts on one device, one loop per worker, all started at once on
// distinct CPUs. The mapping loops write nothing: each touches the pages
// it maps and checks them against the page-index pattern; every outcome
// (errno, a forked child's exit) is counted for the case to judge. Every
// loop runs until all have done their count of iterations, or the time cap
// passes: the fast loops race the slow one to its end. Loops
// like these race the driver's vm_ops->open/->close and its own state
// against each other (taxonomy #7, #19) and unload against live mappings
// (taxonomy #9).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
#include "bindings.h"
#include "child_process.h"
#include "race_group.h"

namespace mmapkit {
namespace {

using race::Block;
using race::Op;
using race::Step;
using race::Worker;

enum class Role : int32_t { kMap, kMremap, kFork, kUnload };

struct MappingSpec {
  int fd;
  uint64_t offset;
  uint64_t length;
  uint64_t page;
  int32_t first_index;  // the pattern index at `offset`; -1: do not check
  Role roles[race::kMaxWorkers];
  int32_t iterations;
  int64_t stop_ms;
  const char* module;   // for kUnload
};

void SetStep(Worker& me, Step step) {
  me.step.store(static_cast<int32_t>(step), std::memory_order_relaxed);
}

// Touches page `p` of the mapping at `addr` and checks its pattern.
void Touch(Worker& me, const MappingSpec& spec, int32_t round, uint64_t addr,
           uint64_t p) {
  me.page.store(static_cast<int32_t>(p), std::memory_order_relaxed);
  const volatile uint64_t* words =
      reinterpret_cast<const volatile uint64_t*>(addr + p * spec.page);
  if (spec.first_index < 0) {
    (void)words[0];
    me.touched.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  race::CheckPage(me, round, spec.first_index + static_cast<int32_t>(p),
                  words, spec.page / sizeof(uint64_t));
}

long MapDevice(Worker& me, const MappingSpec& spec, uint64_t length) {
  SetStep(me, Step::kMapping);
  const long addr = syscall(SYS_mmap, 0UL, length, PROT_READ, MAP_SHARED,
                            spec.fd, spec.offset);
  race::Count(me, Op::kMmap, addr == -1 ? errno : 0);
  return addr;
}

void Unmap(Worker& me, uint64_t addr, uint64_t length) {
  SetStep(me, Step::kUnmapping);
  if (syscall(SYS_munmap, addr, length) != 0) {
    race::Count(me, Op::kMunmap, errno);
  }
}

// mmap, touch the first and the last page, munmap.
void MapOnce(Worker& me, const MappingSpec& spec, int32_t i) {
  const long addr = MapDevice(me, spec, spec.length);
  if (addr == -1) return;
  SetStep(me, Step::kTouching);
  Touch(me, spec, i, addr, 0);
  Touch(me, spec, i, addr, spec.length / spec.page - 1);
  Unmap(me, addr, spec.length);
}

// mmap, shrink to one page (a split: __split_vma), move that page
// elsewhere (move_vma), touch it, munmap. A driver may veto the split or
// the move (may_split, ->mremap): counted, the case judges the errno.
void RemapOnce(Worker& me, const MappingSpec& spec, int32_t i) {
  uint64_t length = spec.length;
  long addr = MapDevice(me, spec, length);
  if (addr == -1) return;
  SetStep(me, Step::kRemapping);
  if (length > spec.page) {
    const long shrunk = syscall(SYS_mremap, addr, length, spec.page, 0, 0UL);
    race::Count(me, Op::kMremapShrink, shrunk == -1 ? errno : 0);
    if (shrunk != -1) length = spec.page;
  }
  const long target = syscall(SYS_mmap, 0UL, length, PROT_NONE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0UL);
  if (target != -1) {
    const long moved = syscall(SYS_mremap, addr, length, length,
                               MREMAP_MAYMOVE | MREMAP_FIXED, target);
    race::Count(me, Op::kMremapMove, moved == -1 ? errno : 0);
    if (moved == -1) {
      syscall(SYS_munmap, target, length);
    } else {
      addr = moved;
    }
  }
  SetStep(me, Step::kTouching);
  Touch(me, spec, i, addr, 0);
  Unmap(me, addr, length);
}

// mmap, touch page 0, fork a child that checks every page of its copy and
// exits, unmap in the parent while the child runs, reap the child.
void ForkOnce(Worker& me, const MappingSpec& spec, int32_t i) {
  const long addr = MapDevice(me, spec, spec.length);
  if (addr == -1) return;
  SetStep(me, Step::kTouching);
  Touch(me, spec, i, addr, 0);
  SetStep(me, Step::kForking);
  const pid_t pid = fork();
  if (pid == 0) {
    // Only memory accesses and _exit here (child_process.h's rules): the
    // worker's siblings are threads that did not come along.
    ResetSignalsInChild();
    alarm(kWatchdogSeconds);
    Worker scratch{};
    for (uint64_t p = 0; p < spec.length / spec.page; ++p) {
      Touch(scratch, spec, i, addr, p);
    }
    _exit(scratch.wrong_count == 0 ? 0 : 1);
  }
  if (pid < 0) {
    race::Count(me, Op::kFork, errno);
    Unmap(me, addr, spec.length);
    return;
  }
  Unmap(me, addr, spec.length);
  SetStep(me, Step::kWaitingForChild);
  int status = 0;
  if (WaitForExit(pid, &status) != 0) return;
  if (WIFSIGNALED(status)) {
    race::Count(me, Op::kChildSignal, WTERMSIG(status));
  } else {
    race::Count(me, Op::kChildExit, WEXITSTATUS(status));
  }
}

void UnloadOnce(Worker& me, const MappingSpec& spec) {
  SetStep(me, Step::kUnloading);
  const long result = syscall(SYS_delete_module, spec.module, O_NONBLOCK);
  race::Count(me, Op::kDeleteModule, result == 0 ? 0 : errno);
}

void MappingWorker(Block& block, int w, const void* raw) {
  const MappingSpec& spec = *static_cast<const MappingSpec*>(raw);
  Worker& me = block.worker[w];
  race::EnterWorker(block, w);
  SetStep(me, Step::kWaiting);
  block.line.Wait();
  bool reached = false;
  for (int32_t i = 0; race::NowMs() < spec.stop_ms; ++i) {
    if (!reached && i >= spec.iterations) {
      reached = true;
      block.reached.fetch_add(1, std::memory_order_relaxed);
    }
    // A fork costs tens of map/munmap loops under TCG: stopping each loop at
    // its own count left the fork loop alone for most of the run.
    if (reached &&
        block.reached.load(std::memory_order_relaxed) == block.workers) {
      break;
    }
    me.round.store(i, std::memory_order_relaxed);
    switch (spec.roles[w]) {
      case Role::kMap: MapOnce(me, spec, i); break;
      case Role::kMremap: RemapOnce(me, spec, i); break;
      case Role::kFork: ForkOnce(me, spec, i); break;
      case Role::kUnload: UnloadOnce(me, spec); break;
    }
    ++me.iterations;
  }
  SetStep(me, Step::kDone);
}

Role ToRole(const Napi::Value& value) {
  const std::string name = ToName(value, "role");
  if (name == "map") return Role::kMap;
  if (name == "mremap") return Role::kMremap;
  if (name == "fork") return Role::kFork;
  if (name == "unload") return Role::kUnload;
  throw Napi::TypeError::New(value.Env(),
                             "role must be map, mremap, fork or unload");
}

}  // namespace

Napi::Value RaceMappings(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  MappingSpec spec{};
  spec.fd = ToInt32(info[0], "fd");
  spec.offset = ToUint64(info[1], "offset");
  spec.length = ToUint64(info[2], "length");
  spec.page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (spec.length == 0 || spec.length % spec.page != 0) {
    throw Napi::RangeError::New(env, "length must be a positive page multiple");
  }
  if (!info[3].IsObject()) {
    throw Napi::TypeError::New(env, "spec must be an object");
  }
  const Napi::Object options = info[3].As<Napi::Object>();
  if (!options.Get("roles").IsArray()) {
    throw Napi::TypeError::New(env, "roles must be an array");
  }
  const Napi::Array roles = options.Get("roles").As<Napi::Array>();
  const int workers = static_cast<int>(roles.Length());
  bool unloads = false;
  for (int w = 0; w < workers && w < race::kMaxWorkers; ++w) {
    spec.roles[w] = ToRole(roles.Get(w));
    unloads = unloads || spec.roles[w] == Role::kUnload;
  }
  // Kept alive for the call: the group's processes read it as forked.
  const std::string module =
      unloads ? ToName(options.Get("module"), "module") : std::string();
  spec.module = module.c_str();
  spec.first_index = ToInt32(options.Get("firstIndex"), "firstIndex");
  spec.iterations = ToInt32(options.Get("iterations"), "iterations");
  const int64_t start = race::NowMs();
  const int32_t time_limit_ms =
      ToInt32(options.Get("timeLimitMs"), "timeLimitMs");
  spec.stop_ms = start + time_limit_ms;
  const race::GroupSpec group{workers, false,
                              start + time_limit_ms + race::kHangAfterMs,
                              "raceMappings"};
  Block* block = race::RunGroup(env, group, MappingWorker, &spec);
  Napi::Object result = Napi::Object::New(env);
  result.Set("workers", race::WorkersToJs(env, *block));
  race::FreeBlock(block);
  return result;
}

}  // namespace mmapkit
