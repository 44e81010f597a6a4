// Running code in a forked child process and collecting what it sends back
// through a pipe: shared by readInChild, readInForkedChild and forkAndExit.
//
// The parent has other threads, whose locks (malloc's, stdio's) may be held
// for ever in the child, so from fork() to _exit() a child makes only
// async-signal-safe calls and allocates nothing. In the parent, nothing may
// throw between fork() and waitpid(), or the child would be left a zombie:
// errors are returned and thrown afterwards.
#pragma once

#include <napi.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mmapkit {

// A hung child (say, a driver's fault handler that never returns) is killed
// by SIGALRM after this long, which the parent reports as ETIMEDOUT.
constexpr unsigned kWatchdogSeconds = 10;

// Exit status of a child that could not write to the pipe.
constexpr int kExitPipeFailed = 2;

// ---- Child side: async-signal-safe.

bool WriteAll(int fd, const void* data, size_t length);

// Default, unblocked SIGSEGV, SIGBUS and SIGALRM: a fault or the watchdog
// kills the child by that signal, for the parent to read from waitpid().
void ResetSignalsInChild();

// Copies `length` bytes of a mapping to `out`; false if a write failed.
bool CopyToPipe(int out, const uint8_t* mapping, size_t length);

// What a child tells its parent first: the call that failed with `err`
// (0: none did; each caller numbers its own calls), then `length` bytes.
struct ChildReport {
  int32_t call;
  int32_t err;
  uint64_t length;
};

// The report alone, for a child that then writes its bytes itself.
bool SendReportHeader(int out, int32_t call, int err, uint64_t length);

// The report and `length` bytes of `data`; the child's exit status: 0, or
// kExitPipeFailed.
int SendReport(int out, int32_t call, int err, const void* data,
               uint64_t length);

// ---- Parent side.

struct Pipe {
  int read_end;
  int write_end;
};

// How a child run by RunInChild ended.
struct ChildOutcome {
  size_t received;  // bytes the child sent, including any that did not fit
  int status;       // from waitpid()
};

// pipe2() with O_CLOEXEC, or throws.
Pipe OpenPipe(Napi::Env env);

// In the child: closes the read end, restores the default fault and alarm
// dispositions, arms the watchdog, and returns the end to write to.
int EnterChild(const Pipe& pipe);

// In the parent, straight after fork() returned `pid` (so errno is still
// fork's if it failed): reads the child's output into `buffer` until EOF
// (keeping at most buffer.size() bytes), reaps the child, and only then
// throws any fork/read/waitpid error.
ChildOutcome CollectChild(Napi::Env env, pid_t pid, const Pipe& pipe,
                          std::vector<uint8_t>& buffer);

// waitpid() retried on EINTR; returns 0 or the errno. `options`: WUNTRACED
// to see a stop as well.
int WaitForExit(pid_t pid, int* status, int options = 0);

// The error for a child killed by `signo` while doing `task` ("reading
// '/dev/x'"): code 'SIGBUS' etc., or 'ETIMEDOUT' for the watchdog's SIGALRM.
Napi::Error ChildSignalError(Napi::Env env, int signo, const std::string& task);

// The report of a child that ended, its bytes after it in `buffer`. Throws
// ChildSignalError (doing `task`) if a signal killed it, ChildExitError
// (naming `fn`) if it sent no whole report, or a report of no failed call
// without exiting 0 or without exactly its bytes.
ChildReport ReadReport(Napi::Env env, const std::vector<uint8_t>& buffer,
                       const ChildOutcome& outcome, const std::string& task,
                       const char* fn);

// The error for a child that exited non-zero or sent the wrong byte count.
Napi::Error ChildExitError(Napi::Env env, int status, size_t received,
                           size_t expected, const char* call);

// Forks a child that runs `child_main(out)` and _exit()s with the int it
// returns; what it writes to `out` lands in `buffer`. child_main runs under
// the child-side rules above, with default SIGSEGV/SIGBUS dispositions, so a
// fault kills the child by that signal for the parent to report.
template <typename ChildMain>
ChildOutcome RunInChild(Napi::Env env, std::vector<uint8_t>& buffer,
                        const ChildMain& child_main) {
  const Pipe pipe = OpenPipe(env);
  const pid_t pid = fork();
  if (pid == 0) _exit(child_main(EnterChild(pipe)));
  return CollectChild(env, pid, pipe, buffer);
}

}  // namespace mmapkit
