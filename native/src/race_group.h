// What raceFaults and raceMappings share: a group of workers (threads of
// one child process, or child processes) that start together, pinned to
// distinct CPUs, and record in shared memory what they did and saw; and
// the parent's side, which waits for the group with a deadline and, when
// it is not met, says where each worker stopped and in which kernel state,
// kills the group and throws ETIMEDOUT instead of waiting a hang out.
//
// The group runs in a forked child (its own process group), never in the
// agent: a driver that deadlocks or livelocks under concurrent faults takes
// that child down, not the process that reports it. The child of a
// multi-threaded parent starts threads of its own: glibc's fork() resets
// the locks pthread_create and malloc take (the stack cache and the malloc
// arenas), so that is safe there, unlike the other calls child_process.h
// rules out.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace mmapkit::race {

constexpr int kMaxWorkers = 8;
constexpr int kMaxWrongPages = 16;
constexpr int kMaxOutcomes = 8;

// How long past its time cap a group may take before it counts as hung:
// the round (or iteration) under way when the cap passes still finishes,
// and one round takes milliseconds, even under TCG.
constexpr int64_t kHangAfterMs = 5000;

// What a worker is doing, for the report of a hang.
enum class Step : int32_t {
  kStarting,
  kWaiting,
  kMapping,
  kTouching,
  kUnmapping,
  kRemapping,
  kForking,
  kWaitingForChild,
  kUnloading,
  kDone,
};

// Operations whose outcomes a worker counts (raceMappings).
enum class Op : int32_t {
  kMmap,
  kMunmap,
  kMremapShrink,
  kMremapMove,
  kFork,
  kChildExit,    // code: the exit status of a forked child (0: saw every page right)
  kChildSignal,  // code: the signal that killed it
  kDeleteModule, // code: the errno, 0 if the module was unloaded
};

// A page whose words were not all its index: `seen` is its first word.
struct WrongPage {
  int32_t round;
  int32_t page;
  uint64_t seen;
  uint32_t wrong_words;
};

struct Outcome {
  Op op;
  int32_t code;
  uint32_t count;
};

struct Worker {
  std::atomic<int32_t> step;
  std::atomic<int32_t> round;
  std::atomic<int32_t> page;
  int32_t pid;
  int32_t tid;
  int32_t cpu;       // the CPU it is pinned to
  uint64_t ran_on;   // bit n: seen running on CPU n (sched_getcpu)
  uint32_t iterations;
  // Pages touched and checked; read by the other workers (SumOverWorkers).
  std::atomic<uint32_t> touched;
  // Touches during which another worker finished one of its own: how often
  // the workers' faults really ran at the same time (raceFaults). On a busy
  // host a vCPU thread may be off its CPU for a whole round.
  std::atomic<uint32_t> overlapped;
  uint32_t wrong_count;
  WrongPage wrong[kMaxWrongPages];
  uint32_t outcome_count;
  Outcome outcomes[kMaxOutcomes];
  int32_t died;      // process workers: the signal that killed it, or 0
};

// A barrier for threads or processes sharing this memory: spins (so that
// every worker leaves it within microseconds of the others) and yields
// after a while. With more workers than CPUs it yields at once: the worker
// it waits for may be waiting for the same CPU.
struct StartLine {
  std::atomic<uint32_t> arrived;
  std::atomic<uint32_t> generation;
  uint32_t parties;
  uint32_t spins_before_yield;
  void Wait();
};

// The shared memory of one run, MAP_SHARED | MAP_ANONYMOUS, made by the
// parent before fork() so that it can read what the group recorded even
// after killing it.
struct Block {
  StartLine line;
  std::atomic<int32_t> go;
  std::atomic<int32_t> failed;
  std::atomic<uint64_t> addr;
  // Workers that have done their share of iterations (raceMappings): a
  // loop goes on until every loop has, so that the fast loops keep racing
  // the slowest one instead of leaving it to run alone.
  std::atomic<int32_t> reached;
  int32_t workers;
  Worker worker[kMaxWorkers];
};

// CLOCK_MONOTONIC in milliseconds: the same clock in every process.
int64_t NowMs();

// Pins the calling thread to worker `w`'s CPU and records who it is.
void EnterWorker(Block& block, int w);

// Checks one page: every 8-byte word must hold `index`. Records a wrong
// page and the CPU the worker ran on.
void CheckPage(Worker& me, int32_t round, int32_t index,
               const volatile uint64_t* words, size_t word_count);

// One of the workers' counters summed over them, worker `except` left out
// (-1: none): the pages the others touched, the overlaps of all.
uint32_t SumOverWorkers(const Block& block,
                        std::atomic<uint32_t> Worker::*counter,
                        int except = -1);

// Counts one outcome of an operation.
void Count(Worker& me, Op op, int32_t code);

// Runs `body` in worker `w`'s thread, for `workers` threads of the child.
using WorkerBody = void (*)(Block& block, int w, const void* spec);

struct GroupSpec {
  int workers;
  bool processes;       // one process per worker, else one thread per worker
  int64_t deadline_ms;  // NowMs() by which the group must be gone
  const char* what;     // "raceFaults", for messages
};

// The parent's side: maps the shared Block, forks the group (which runs
// `body` for each worker, pinned, then exits), waits for it until the
// deadline and returns the Block (munmap it with FreeBlock). A group that
// hangs is killed and reported as ETIMEDOUT with where each worker stopped;
// one that dies of a signal as that signal, with what each worker was doing.
Block* RunGroup(Napi::Env env, const GroupSpec& group, WorkerBody body,
                const void* spec);
void FreeBlock(Block* block);

// The workers' records as JavaScript: [{ cpu, ranOn, iterations, touched,
// overlapped, wrongCount, wrong: [{ round, page, seen }], outcomes: [{ op,
// code, count }] }].
Napi::Array WorkersToJs(Napi::Env env, const Block& block);

}  // namespace mmapkit::race
