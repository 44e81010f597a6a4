// forkAndExit: a child that exists only to be forked and to exit, so a test
// can check that a driver's vm_ops->open and ->close calls balance over the
// copy of every VMA that fork() makes and exit() tears down.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "bindings.h"
#include "child_process.h"
#include "errors.h"

namespace mmapkit {

Napi::Value ForkAndExit(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const pid_t pid = fork();
  // Nothing else in the child: no watchdog, no pipe, no page touched, so
  // the only VMA traffic is fork's copy and exit's teardown.
  if (pid == 0) _exit(0);
  if (pid < 0) throw ErrnoError(env, errno, "fork");
  int status = 0;
  const int err = WaitForExit(pid, &status);
  if (err != 0) throw ErrnoError(env, err, "waitpid");
  if (WIFSIGNALED(status)) {
    throw ChildSignalError(env, WTERMSIG(status), "exiting after fork");
  }
  return Napi::Number::New(env, WEXITSTATUS(status));
}

}  // namespace mmapkit
