#include "child_process.h"

#include <fcntl.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "errors.h"

namespace mmapkit {

// The child inherits our SIGSEGV/SIGBUS handlers (which would chain into
// Node's) and the forking thread's signal mask. With default, unblocked
// dispositions a fault or the watchdog kills the child by that signal,
// which is exactly what the parent reads back from waitpid().
void ResetSignalsInChild() {
  struct sigaction default_action;
  std::memset(&default_action, 0, sizeof default_action);
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  sigset_t fatal;
  sigemptyset(&fatal);
  for (const int signo : {SIGSEGV, SIGBUS, SIGALRM}) {
    sigaction(signo, &default_action, nullptr);
    sigaddset(&fatal, signo);
  }
  sigprocmask(SIG_UNBLOCK, &fatal, nullptr);
}

namespace {

// Reads until EOF into the pre-sized `buffer` without growing it; excess
// bytes (a protocol error) are counted in *received but dropped.
int ReadUntilEof(int fd, std::vector<uint8_t>& buffer, size_t* received) {
  uint8_t excess[256];
  for (;;) {
    const bool fits = *received < buffer.size();
    uint8_t* into = fits ? buffer.data() + *received : excess;
    const size_t room = fits ? buffer.size() - *received : sizeof excess;
    const ssize_t n = read(fd, into, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    *received += static_cast<size_t>(n);
  }
}

}  // namespace

bool WriteAll(int fd, const void* data, size_t length) {
  const uint8_t* next = static_cast<const uint8_t*>(data);
  while (length > 0) {
    const ssize_t n = write(fd, next, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    next += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

// Copies through a stack buffer instead of write()ing straight from the
// mapping: inside write() the kernel turns a fault into EFAULT, while a
// userspace read dies of the real SIGBUS/SIGSEGV the test wants to see.
bool CopyToPipe(int out, const uint8_t* mapping, size_t length) {
  uint8_t chunk[4096];
  for (size_t done = 0; done < length;) {
    const size_t n = std::min(sizeof chunk, length - done);
    std::memcpy(chunk, mapping + done, n);
    if (!WriteAll(out, chunk, n)) return false;
    done += n;
  }
  return true;
}

bool SendReportHeader(int out, int32_t call, int err, uint64_t length) {
  const ChildReport report{call, err, length};
  return WriteAll(out, &report, sizeof report);
}

int SendReport(int out, int32_t call, int err, const void* data,
               uint64_t length) {
  const bool sent = SendReportHeader(out, call, err, length) &&
                    (length == 0 || WriteAll(out, data, length));
  return sent ? 0 : kExitPipeFailed;
}

Pipe OpenPipe(Napi::Env env) {
  int fds[2];
  // O_CLOEXEC: a process another thread spawns meanwhile must not hold the
  // write end open, or the parent would never see EOF.
  if (pipe2(fds, O_CLOEXEC) != 0) throw ErrnoError(env, errno, "pipe2");
  return Pipe{fds[0], fds[1]};
}

int EnterChild(const Pipe& pipe) {
  close(pipe.read_end);
  ResetSignalsInChild();
  alarm(kWatchdogSeconds);
  return pipe.write_end;
}

ChildOutcome CollectChild(Napi::Env env, pid_t pid, const Pipe& pipe,
                          std::vector<uint8_t>& buffer) {
  if (pid < 0) {
    const int err = errno;
    close(pipe.read_end);
    close(pipe.write_end);
    throw ErrnoError(env, err, "fork");
  }
  // Our copy of the write end must go, or EOF would never come.
  close(pipe.write_end);
  ChildOutcome outcome{0, 0};
  const int read_err = ReadUntilEof(pipe.read_end, buffer, &outcome.received);
  close(pipe.read_end);
  const int wait_err = WaitForExit(pid, &outcome.status);
  if (read_err != 0) throw ErrnoError(env, read_err, "read");
  if (wait_err != 0) throw ErrnoError(env, wait_err, "waitpid");
  return outcome;
}

int WaitForExit(pid_t pid, int* status, int options) {
  while (waitpid(pid, status, options) < 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

Napi::Error ChildSignalError(Napi::Env env, int signo,
                             const std::string& task) {
  if (signo == SIGALRM) {
    return CodedError(env, "ETIMEDOUT",
                      "ETIMEDOUT: child " + task + " did not finish within " +
                          std::to_string(kWatchdogSeconds) + " s");
  }
  const std::string code = SignalCode(signo);
  return CodedError(env, code, code + " in child " + task);
}

ChildReport ReadReport(Napi::Env env, const std::vector<uint8_t>& buffer,
                       const ChildOutcome& outcome, const std::string& task,
                       const char* fn) {
  if (WIFSIGNALED(outcome.status)) {
    throw ChildSignalError(env, WTERMSIG(outcome.status), task);
  }
  ChildReport report{};
  if (outcome.received < sizeof report) {
    throw ChildExitError(env, outcome.status, outcome.received, sizeof report,
                         fn);
  }
  std::memcpy(&report, buffer.data(), sizeof report);
  // A failed call is the report's whole point, however the child then ended.
  if (report.call != 0) return report;
  const uint64_t expected = sizeof report + report.length;
  if (WEXITSTATUS(outcome.status) != 0 || outcome.received != expected ||
      expected > buffer.size()) {
    throw ChildExitError(env, outcome.status, outcome.received, expected, fn);
  }
  return report;
}

Napi::Error ChildExitError(Napi::Env env, int status, size_t received,
                           size_t expected, const char* call) {
  return CodedError(env, "EIO",
                    "EIO: child exited with status " +
                        std::to_string(WEXITSTATUS(status)) + " after " +
                        std::to_string(received) + " of " +
                        std::to_string(expected) + " bytes, " + call);
}

}  // namespace mmapkit
