#include "race_group.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <new>
#include <sstream>
#include <string>

#include "child_process.h"
#include "errors.h"

namespace mmapkit::race {
namespace {

// After SIGKILL, how long the group may take to go. A task that does not
// is stuck in the kernel (an uninterruptible sleep): the report says so and
// the agent moves on without it.
constexpr int64_t kReapGraceMs = 2000;
// A waiter at the start line spins this often before it yields its CPU.
constexpr uint32_t kSpinsBeforeYield = 20000;

constexpr int32_t kExitThreadFailed = 3;

const char* StepName(Step step) {
  switch (step) {
    case Step::kStarting: return "starting";
    case Step::kWaiting: return "waiting for the other workers";
    case Step::kMapping: return "in mmap";
    case Step::kTouching: return "touching";
    case Step::kUnmapping: return "in munmap";
    case Step::kRemapping: return "in mremap";
    case Step::kForking: return "in fork";
    case Step::kWaitingForChild: return "waiting for its forked child";
    case Step::kUnloading: return "in delete_module";
    case Step::kDone: return "done";
  }
  return "?";
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kMmap: return "mmap";
    case Op::kMunmap: return "munmap";
    case Op::kMremapShrink: return "mremap-shrink";
    case Op::kMremapMove: return "mremap-move";
    case Op::kFork: return "fork";
    case Op::kChildExit: return "child-exit";
    case Op::kChildSignal: return "child-signal";
    case Op::kDeleteModule: return "delete_module";
  }
  return "?";
}

// The CPUs this process may run on, in order; worker w gets the
// (w mod n)-th, so that two workers are on two CPUs whenever there are two.
int AllowedCpus(int* cpus, int max) {
  cpu_set_t set;
  CPU_ZERO(&set);
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && n < max; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
  }
  return n;
}

struct ThreadStart {
  Block* block;
  int w;
  WorkerBody body;
  const void* spec;
};

void* ThreadMain(void* arg) {
  const ThreadStart* start = static_cast<const ThreadStart*>(arg);
  start->body(*start->block, start->w, start->spec);
  return nullptr;
}

// The group's own process: one thread or one process per worker, then its
// exit status for the parent. Runs in the forked child.
int Supervise(Block& block, const GroupSpec& group, WorkerBody body,
              const void* spec) {
  if (group.processes) {
    pid_t pids[kMaxWorkers];
    for (int w = 0; w < group.workers; ++w) {
      pids[w] = fork();
      if (pids[w] == 0) {
        body(block, w, spec);
        _exit(0);
      }
      if (pids[w] < 0) return kExitThreadFailed;
    }
    // A worker killed by a signal leaves the others spinning at the start
    // line: record it and end them, so the parent reports the signal, not
    // a hang.
    for (int left = group.workers; left > 0; --left) {
      int status = 0;
      const pid_t pid = wait(&status);
      if (pid < 0) break;
      for (int w = 0; w < group.workers; ++w) {
        if (pids[w] != pid || !WIFSIGNALED(status)) continue;
        block.worker[w].died = WTERMSIG(status);
        for (int other = 0; other < group.workers; ++other) {
          if (other != w) kill(pids[other], SIGKILL);
        }
      }
    }
    return 0;
  }
  pthread_t threads[kMaxWorkers];
  ThreadStart starts[kMaxWorkers];
  int started = 0;
  for (int w = 0; w < group.workers; ++w) {
    starts[w] = ThreadStart{&block, w, body, spec};
    if (pthread_create(&threads[w], nullptr, ThreadMain, &starts[w]) != 0) {
      // The started ones wait at the start line for ever: the parent's
      // deadline ends them; the exit status says why.
      _exit(kExitThreadFailed);
    }
    ++started;
  }
  for (int w = 0; w < started; ++w) pthread_join(threads[w], nullptr);
  return 0;
}

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "state D, wchan mutex_lock" for a task of the group, from /proc.
std::string KernelState(int32_t pid, int32_t tid) {
  const std::string task =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid);
  const std::string stat = ReadLine(task + "/stat");
  const size_t paren = stat.rfind(") ");
  if (paren == std::string::npos) return "gone";
  std::string state = "state " + stat.substr(paren + 2, 1);
  const std::string wchan = ReadLine(task + "/wchan");
  if (!wchan.empty() && wchan != "0") state += ", wchan " + wchan;
  return state;
}

// Where each unfinished worker stopped, for the message of a hang or crash.
std::string DescribeWorkers(const Block& block, bool with_kernel_state) {
  std::ostringstream out;
  for (int w = 0; w < block.workers; ++w) {
    const Worker& worker = block.worker[w];
    const Step step = static_cast<Step>(worker.step.load());
    if (step == Step::kDone) continue;
    out << "; worker " << w << " (cpu " << worker.cpu << ") " << StepName(step);
    if (step == Step::kTouching) out << " page " << worker.page.load();
    out << " in round " << worker.round.load();
    if (with_kernel_state && worker.tid > 0) {
      out << " [" << KernelState(worker.pid, worker.tid) << "]";
    }
  }
  return out.str();
}

// waitpid() until `deadline_ms`; false if the child is still there.
bool WaitUntil(pid_t pid, int64_t deadline_ms, int* status) {
  for (;;) {
    const pid_t done = waitpid(pid, status, WNOHANG);
    if (done == pid) return true;
    if (done < 0 && errno != EINTR) return true;
    if (NowMs() >= deadline_ms) return false;
    const struct timespec pause{0, 1000000};  // 1 ms
    nanosleep(&pause, nullptr);
  }
}

}  // namespace

int64_t NowMs() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

void StartLine::Wait() {
  const uint32_t gen = generation.load(std::memory_order_acquire);
  if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == parties) {
    arrived.store(0, std::memory_order_relaxed);
    generation.fetch_add(1, std::memory_order_release);
    return;
  }
  for (unsigned spins = 0;
       generation.load(std::memory_order_acquire) == gen; ++spins) {
    if (spins >= spins_before_yield) {
      sched_yield();
    } else {
      __builtin_ia32_pause();
    }
  }
}

void EnterWorker(Block& block, int w) {
  Worker& me = block.worker[w];
  me.pid = getpid();
  me.tid = static_cast<int32_t>(syscall(SYS_gettid));
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(me.cpu, &set);
  // pid 0: the calling thread only.
  sched_setaffinity(0, sizeof set, &set);
}

void CheckPage(Worker& me, int32_t round, int32_t index,
               const volatile uint64_t* words, size_t word_count) {
  uint32_t wrong = 0;
  for (size_t i = 0; i < word_count; ++i) {
    if (words[i] != static_cast<uint64_t>(index)) ++wrong;
  }
  const int cpu = sched_getcpu();
  if (cpu >= 0 && cpu < 64) me.ran_on |= uint64_t{1} << cpu;
  me.touched.fetch_add(1, std::memory_order_relaxed);
  if (wrong == 0) return;
  if (me.wrong_count < kMaxWrongPages) {
    me.wrong[me.wrong_count] = WrongPage{round, index, words[0], wrong};
  }
  ++me.wrong_count;
}

uint32_t SumOverWorkers(const Block& block,
                        std::atomic<uint32_t> Worker::*counter, int except) {
  uint32_t sum = 0;
  for (int w = 0; w < block.workers; ++w) {
    if (w != except) {
      sum += (block.worker[w].*counter).load(std::memory_order_relaxed);
    }
  }
  return sum;
}

void Count(Worker& me, Op op, int32_t code) {
  for (uint32_t i = 0; i < me.outcome_count; ++i) {
    if (me.outcomes[i].op == op && me.outcomes[i].code == code) {
      ++me.outcomes[i].count;
      return;
    }
  }
  if (me.outcome_count < kMaxOutcomes) {
    me.outcomes[me.outcome_count++] = Outcome{op, code, 1};
  }
}

Block* RunGroup(Napi::Env env, const GroupSpec& group, WorkerBody body,
                const void* spec) {
  if (group.workers < 1 || group.workers > kMaxWorkers) {
    throw Napi::RangeError::New(env, "workers must be 1.." +
                                         std::to_string(kMaxWorkers));
  }
  void* shared = mmap(nullptr, sizeof(Block), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) throw ErrnoError(env, errno, "mmap");
  Block* block = new (shared) Block();
  block->workers = group.workers;
  block->line.parties = static_cast<uint32_t>(group.workers);
  int cpus[kMaxWorkers];
  const int allowed = AllowedCpus(cpus, kMaxWorkers);
  for (int w = 0; w < group.workers; ++w) {
    block->worker[w].cpu = allowed > 0 ? cpus[w % allowed] : 0;
  }
  block->line.spins_before_yield =
      group.workers > allowed ? 0 : kSpinsBeforeYield;
  const pid_t pid = fork();
  if (pid == 0) {
    // Its own process group, so that the parent can kill every worker
    // process and forked grandchild at once.
    setpgid(0, 0);
    ResetSignalsInChild();
    _exit(Supervise(*block, group, body, spec));
  }
  if (pid < 0) {
    const int err = errno;
    FreeBlock(block);
    throw ErrnoError(env, err, "fork");
  }
  setpgid(pid, pid);  // also here: whichever runs first, the group exists
  int status = 0;
  if (!WaitUntil(pid, group.deadline_ms, &status)) {
    const std::string where = DescribeWorkers(*block, true);
    kill(-pid, SIGKILL);
    const bool reaped = WaitUntil(pid, NowMs() + kReapGraceMs, &status);
    FreeBlock(block);
    throw CodedError(
        env, "ETIMEDOUT",
        std::string("ETIMEDOUT: ") + group.what +
            ": the workers did not finish by the deadline (a deadlock or "
            "livelock): killed" +
            (reaped ? "" : ", and still not gone " +
                               std::to_string(kReapGraceMs) +
                               " ms after SIGKILL (stuck in the kernel)") +
            where);
  }
  // Nothing of the group outlives a normal exit (workers and their children
  // are reaped); after a signal, a forked child ends by its own watchdog.
  if (WIFSIGNALED(status)) {
    const std::string where = DescribeWorkers(*block, false);
    FreeBlock(block);
    throw ChildSignalError(env, WTERMSIG(status),
                           std::string("running ") + group.what + where);
  }
  for (int w = 0; w < group.workers; ++w) {
    const int died = block->worker[w].died;
    if (died == 0) continue;
    const std::string where = DescribeWorkers(*block, false);
    FreeBlock(block);
    throw ChildSignalError(env, died,
                           std::string("running ") + group.what +
                               " (worker process " + std::to_string(w) + ")" +
                               where);
  }
  if (WEXITSTATUS(status) != 0) {
    FreeBlock(block);
    throw CodedError(env, "EIO",
                     std::string("EIO: ") + group.what +
                         ": the group could not start its workers (exit " +
                         std::to_string(WEXITSTATUS(status)) + ")");
  }
  return block;
}

void FreeBlock(Block* block) { munmap(block, sizeof(Block)); }

Napi::Array WorkersToJs(Napi::Env env, const Block& block) {
  Napi::Array workers = Napi::Array::New(env, block.workers);
  for (int w = 0; w < block.workers; ++w) {
    const Worker& worker = block.worker[w];
    Napi::Object out = Napi::Object::New(env);
    out.Set("cpu", worker.cpu);
    Napi::Array ran_on = Napi::Array::New(env);
    for (uint32_t cpu = 0; cpu < 64; ++cpu) {
      if (worker.ran_on & (uint64_t{1} << cpu)) ran_on.Set(ran_on.Length(), cpu);
    }
    out.Set("ranOn", ran_on);
    out.Set("iterations", worker.iterations);
    out.Set("touched", worker.touched.load());
    out.Set("overlapped", worker.overlapped.load());
    out.Set("wrongCount", worker.wrong_count);
    Napi::Array wrong = Napi::Array::New(env);
    for (uint32_t i = 0; i < worker.wrong_count && i < kMaxWrongPages; ++i) {
      Napi::Object page = Napi::Object::New(env);
      page.Set("round", worker.wrong[i].round);
      page.Set("page", worker.wrong[i].page);
      page.Set("seen", Napi::BigInt::New(env, worker.wrong[i].seen));
      page.Set("wrongWords", worker.wrong[i].wrong_words);
      wrong.Set(i, page);
    }
    out.Set("wrong", wrong);
    Napi::Array outcomes = Napi::Array::New(env);
    for (uint32_t i = 0; i < worker.outcome_count; ++i) {
      const Outcome& outcome = worker.outcomes[i];
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("op", OpName(outcome.op));
      if (outcome.op == Op::kChildSignal) {
        entry.Set("code", SignalCode(outcome.code));
      } else if (outcome.op == Op::kChildExit) {
        entry.Set("code", std::to_string(outcome.code));
      } else {
        entry.Set("code", outcome.code == 0 ? std::string("ok")
                                            : ErrnoCode(outcome.code));
      }
      entry.Set("count", outcome.count);
      outcomes.Set(i, entry);
    }
    out.Set("outcomes", outcomes);
    workers.Set(w, out);
  }
  return workers;
}

}  // namespace mmapkit::race
