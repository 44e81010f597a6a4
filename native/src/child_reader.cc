// readInChild: read a file's mapping from a second process, so a test can
// check that data written through one process's mapping is seen by another.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

#include "args.h"
#include "bindings.h"
#include "errors.h"

namespace mmapkit {
namespace {

// A hung child (say, a driver's fault handler that never returns) is killed
// by SIGALRM after this long, which the parent reports as ETIMEDOUT.
constexpr unsigned kWatchdogSeconds = 10;

// The first bytes the child sends: whether it got the mapping, and if not,
// which call failed with which errno. The data follows a kMapped report.
enum Stage : int32_t { kMapped = 0, kOpenFailed = 1, kMmapFailed = 2 };
struct Report {
  int32_t stage;
  int32_t err;
};

// Exit status of a child that could not write to the pipe.
constexpr int kExitPipeFailed = 2;

struct ChildRequest {
  const char* path;
  uint64_t offset;
  size_t length;
  uint64_t map_length;  // length rounded up to whole pages
};

// ---- Child side. The parent has other threads, whose locks (malloc's,
// stdio's) may be held for ever in the child, so from fork() to _exit()
// only async-signal-safe calls are made and nothing is allocated.

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

bool SendReport(int out, Stage stage, int err) {
  const Report report{stage, err};
  return WriteAll(out, &report, sizeof report);
}

[[noreturn]] void FailAndExit(int out, Stage stage, int err) {
  _exit(SendReport(out, stage, err) ? 1 : kExitPipeFailed);
}

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

[[noreturn]] void RunChild(int out, const ChildRequest& request) {
  ResetSignalsInChild();
  alarm(kWatchdogSeconds);
  const int fd = open(request.path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailAndExit(out, kOpenFailed, errno);
  const long addr = syscall(SYS_mmap, 0UL, request.map_length, PROT_READ,
                            MAP_SHARED, fd, request.offset);
  if (addr == -1) FailAndExit(out, kMmapFailed, errno);
  const bool sent =
      SendReport(out, kMapped, 0) &&
      CopyToPipe(out, reinterpret_cast<const uint8_t*>(addr), request.length);
  _exit(sent ? 0 : kExitPipeFailed);
}

// ---- Parent side. Between fork() and waitpid() nothing may throw, or the
// child would be left a zombie: errors are returned and thrown afterwards.

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

int WaitForExit(pid_t pid, int* status) {
  while (waitpid(pid, status, 0) < 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

Napi::Error ChildSignalError(Napi::Env env, int signo,
                             const std::string& path) {
  if (signo == SIGALRM) {
    return CodedError(env, "ETIMEDOUT",
                      "ETIMEDOUT: child reading '" + path +
                          "' did not finish within " +
                          std::to_string(kWatchdogSeconds) + " s");
  }
  const std::string code = SignalCode(signo);
  return CodedError(env, code, code + " in child reading '" + path + "'");
}

Napi::Error ChildExitError(Napi::Env env, int status, size_t received,
                           size_t expected) {
  return CodedError(env, "EIO",
                    "EIO: child exited with status " +
                        std::to_string(WEXITSTATUS(status)) + " after " +
                        std::to_string(received) + " of " +
                        std::to_string(expected) + " bytes, readInChild");
}

// Turns what the child sent and how it ended into the result or an error.
Napi::Value Interpret(Napi::Env env, const std::string& path,
                      const std::vector<uint8_t>& buffer, size_t received,
                      int status) {
  if (WIFSIGNALED(status)) {
    throw ChildSignalError(env, WTERMSIG(status), path);
  }
  if (received < sizeof(Report)) {
    throw ChildExitError(env, status, received, buffer.size());
  }
  Report report;
  std::memcpy(&report, buffer.data(), sizeof report);
  if (report.stage == kOpenFailed) throw ErrnoError(env, report.err, "open", path);
  if (report.stage == kMmapFailed) throw ErrnoError(env, report.err, "mmap");
  if (WEXITSTATUS(status) != 0 || received != buffer.size()) {
    throw ChildExitError(env, status, received, buffer.size());
  }
  return Napi::Buffer<uint8_t>::Copy(env, buffer.data() + sizeof report,
                                     buffer.size() - sizeof report);
}

uint64_t RoundUpToPage(uint64_t length) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return (length + page - 1) / page * page;
}

}  // namespace

Napi::Value ReadInChild(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::string path = ToPath(info[0], "path");
  const uint64_t offset = ToUint64(info[1], "offset");
  const size_t length = ToSize(info[2], "length");
  const ChildRequest request{path.c_str(), offset, length,
                             RoundUpToPage(length)};
  std::vector<uint8_t> buffer(sizeof(Report) + length);

  int pipe_fds[2];
  // O_CLOEXEC: a process another thread spawns meanwhile must not hold the
  // write end open, or the parent would never see EOF.
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw ErrnoError(env, errno, "pipe2");
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    throw ErrnoError(env, err, "fork");
  }
  if (pid == 0) {
    close(pipe_fds[0]);
    RunChild(pipe_fds[1], request);
  }
  close(pipe_fds[1]);
  size_t received = 0;
  const int read_err = ReadUntilEof(pipe_fds[0], buffer, &received);
  close(pipe_fds[0]);
  int status = 0;
  const int wait_err = WaitForExit(pid, &status);
  if (read_err != 0) throw ErrnoError(env, read_err, "read");
  if (wait_err != 0) throw ErrnoError(env, wait_err, "waitpid");
  return Interpret(env, path, buffer, received, status);
}

}  // namespace mmapkit
