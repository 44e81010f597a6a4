// readAsOtherProcess and peekData: this process's memory as the kernel
// reaches it on another process's behalf (catalogue I1, I2).
// process_vm_readv pins the pages with GUP (process_vm_rw_core); a read of
// /proc/PID/mem uses GUP, then vm_ops->access (__access_remote_vm);
// PTRACE_PEEKDATA goes the same way (generic_ptrace_peekdata). 6.1 and 6.12.
//
// Each runs in a forked child under the watchdog (child_process.h): GUP
// retries a fault until a fatal signal is pending, and the watchdog's
// SIGALRM, unhandled, is one (complete_signal), so a driver whose fault
// handler never installs the page ends the child, not this process.
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "bindings.h"
#include "child_process.h"
#include "errors.h"

namespace mmapkit {
namespace {

// The most one readAsOtherProcess reads: the child reads onto its stack.
constexpr size_t kMaxRead = 4096;

// The call a child's report is about, for the error's syscall.
enum class Call : int32_t { kNone, kOpen, kRead, kWait, kPtrace };

const char* CallName(Call call, const char* read_call) {
  switch (call) {
    case Call::kOpen: return "open";
    case Call::kRead: return read_call;
    case Call::kWait: return "waitpid";
    case Call::kPtrace: return "ptrace";
    case Call::kNone: break;
  }
  return "none";
}

// ---- Child side (child_process.h's rules).

// A report (child_process.h ChildReport) of `call` failing with `err`, or of
// none, then `length` bytes of `data`.
int Send(int out, Call call, int err, const void* data, uint64_t length) {
  return SendReport(out, static_cast<int32_t>(call), err, data, length);
}

int ReadParent(int out, bool proc_mem, const char* mem_path, uint64_t addr,
               size_t length) {
  uint8_t bytes[kMaxRead];
  ssize_t n;
  if (proc_mem) {
    const int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Send(out, Call::kOpen, errno, nullptr, 0);
    n = pread(fd, bytes, length, static_cast<off_t>(addr));
  } else {
    const struct iovec local = {bytes, length};
    const struct iovec remote = {ToPointer(addr), length};
    n = syscall(SYS_process_vm_readv, getppid(), &local, 1UL, &remote, 1UL,
                0UL);
  }
  if (n < 0) return Send(out, Call::kRead, errno, nullptr, 0);
  return Send(out, Call::kNone, 0, bytes, static_cast<uint64_t>(n));
}

// Stops the parent's thread that forked this child (which waits for it) with
// PTRACE_SEIZE and PTRACE_INTERRUPT, peeks at `addr` in its memory, and lets
// it go. Only that thread stops; a tracer the watchdog ends detaches it.
int PeekInParent(int out, uint64_t addr) {
  const pid_t parent = getppid();
  if (syscall(SYS_ptrace, PTRACE_SEIZE, parent, 0, 0) != 0) {
    return Send(out, Call::kPtrace, errno, nullptr, 0);
  }
  int err = 0;
  Call failed = Call::kNone;
  int status = 0;
  if (syscall(SYS_ptrace, PTRACE_INTERRUPT, parent, 0, 0) != 0) {
    failed = Call::kPtrace;
    err = errno;
  } else if ((err = WaitForExit(parent, &status, __WALL)) != 0) {
    failed = Call::kWait;
  }
  uint64_t word = 0;
  if (failed == Call::kNone &&
      syscall(SYS_ptrace, PTRACE_PEEKDATA, parent, addr, &word) != 0) {
    failed = Call::kPtrace;
    err = errno;
  }
  // A signal that reached the thread first stopped it instead of the
  // interrupt: handed back on detach, or the parent would never see it.
  const bool signal_stop = failed != Call::kWait && WIFSTOPPED(status) &&
                           (status >> 16) == 0;
  syscall(SYS_ptrace, PTRACE_DETACH, parent, 0,
          signal_stop ? WSTOPSIG(status) : 0);
  if (failed != Call::kNone) return Send(out, failed, err, nullptr, 0);
  return Send(out, Call::kNone, 0, &word, sizeof word);
}

// ---- Parent side.

// The bytes a child sent, or its failure as an error: `task` says what it
// was doing ("reading 0x7f... through /proc/PID/mem"), `read_call` names
// the read for an error of Call::kRead.
Napi::Value Interpret(Napi::Env env, const std::vector<uint8_t>& buffer,
                      const ChildOutcome& outcome, const std::string& task,
                      const char* fn, const char* read_call) {
  const ChildReport report = ReadReport(env, buffer, outcome, task, fn);
  if (report.call != static_cast<int32_t>(Call::kNone)) {
    throw ErrnoError(env, report.err,
                     CallName(static_cast<Call>(report.call), read_call));
  }
  return Napi::Buffer<uint8_t>::Copy(env, buffer.data() + sizeof report,
                                     report.length);
}

}  // namespace

Napi::Value ReadAsOtherProcess(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::string how = ToName(info[0], "how");
  if (how != "process_vm_readv" && how != "proc-mem") {
    throw Napi::TypeError::New(env, "how must be process_vm_readv or proc-mem");
  }
  const uint64_t addr = ToUint64(info[1], "addr");
  const size_t length = ToSize(info[2], "length");
  if (length > kMaxRead) {
    throw Napi::RangeError::New(
        env, "length: at most " + std::to_string(kMaxRead) + " bytes");
  }
  const bool proc_mem = how == "proc-mem";
  // Made here: the child may not allocate.
  const std::string mem_path = "/proc/" + std::to_string(getpid()) + "/mem";
  std::vector<uint8_t> buffer(sizeof(ChildReport) + length);
  const ChildOutcome outcome = RunInChild(env, buffer, [&](int out) {
    return ReadParent(out, proc_mem, mem_path.c_str(), addr, length);
  });
  return Interpret(env, buffer, outcome,
                   "reading " + HexAddress(addr) + " through " +
                       (proc_mem ? mem_path : "process_vm_readv"),
                   "readAsOtherProcess", proc_mem ? "pread" : "process_vm_readv");
}

Napi::Value PeekData(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const uint64_t addr = ToUint64(info[0], "addr");
  std::vector<uint8_t> buffer(sizeof(ChildReport) + sizeof(uint64_t));
  const ChildOutcome outcome = RunInChild(
      env, buffer, [addr](int out) { return PeekInParent(out, addr); });
  return Interpret(env, buffer, outcome, "peeking at " + HexAddress(addr),
                   "peekData", "ptrace");
}

}  // namespace mmapkit
