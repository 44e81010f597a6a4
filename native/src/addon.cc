// Module entry point: installs the fault handlers and exports the API.
#include <fcntl.h>
#include <sys/mman.h>

#include <utility>

#include "bindings.h"
#include "errors.h"
#include "fault_guard.h"

namespace mmapkit {
namespace {

Napi::Object Constants(Napi::Env env) {
  static constexpr std::pair<const char*, int> kConstants[] = {
      {"PROT_NONE", PROT_NONE},
      {"PROT_READ", PROT_READ},
      {"PROT_WRITE", PROT_WRITE},
      {"PROT_EXEC", PROT_EXEC},
      {"MAP_SHARED", MAP_SHARED},
      {"MAP_PRIVATE", MAP_PRIVATE},
      {"MAP_SHARED_VALIDATE", MAP_SHARED_VALIDATE},
      {"MAP_FIXED", MAP_FIXED},
      {"MAP_FIXED_NOREPLACE", MAP_FIXED_NOREPLACE},
      {"MAP_ANONYMOUS", MAP_ANONYMOUS},
      {"MAP_POPULATE", MAP_POPULATE},
      {"MAP_NORESERVE", MAP_NORESERVE},
      {"O_RDONLY", O_RDONLY},
      {"O_WRONLY", O_WRONLY},
      {"O_RDWR", O_RDWR},
      {"O_NONBLOCK", O_NONBLOCK},
      {"O_SYNC", O_SYNC},
      {"MREMAP_MAYMOVE", MREMAP_MAYMOVE},
      {"MREMAP_FIXED", MREMAP_FIXED},
      {"MREMAP_DONTUNMAP", MREMAP_DONTUNMAP},
      {"MADV_NORMAL", MADV_NORMAL},
      {"MADV_DONTNEED", MADV_DONTNEED},
      {"MADV_DONTFORK", MADV_DONTFORK},
      {"MADV_DOFORK", MADV_DOFORK},
      {"MADV_WILLNEED", MADV_WILLNEED},
      {"MS_ASYNC", MS_ASYNC},
      {"MS_SYNC", MS_SYNC},
      {"MS_INVALIDATE", MS_INVALIDATE},
  };
  Napi::Object constants = Napi::Object::New(env);
  for (const auto& [name, value] : kConstants) {
    constants.Set(name, Napi::Number::New(env, value));
  }
  constants.Freeze();
  return constants;
}

void Export(Napi::Env env, Napi::Object exports, const char* name,
            Napi::Function::Callback callback) {
  exports.Set(name, Napi::Function::New(env, callback, name));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // At load time, not on first use: the handlers must already be in place
  // before the first guarded access on any thread.
  const int err = InstallFaultHandlers();
  if (err != 0) throw ErrnoError(env, err, "sigaction");
  Export(env, exports, "open", Open);
  Export(env, exports, "close", Close);
  Export(env, exports, "mmap", Mmap);
  Export(env, exports, "munmap", Munmap);
  Export(env, exports, "mprotect", Mprotect);
  Export(env, exports, "mremap", Mremap);
  Export(env, exports, "madvise", Madvise);
  Export(env, exports, "mlock", Mlock);
  Export(env, exports, "munlock", Munlock);
  Export(env, exports, "msync", Msync);
  Export(env, exports, "mincore", Mincore);
  Export(env, exports, "readBytes", ReadBytes);
  Export(env, exports, "writeBytes", WriteBytes);
  Export(env, exports, "probe", Probe);
  Export(env, exports, "readInChild", ReadInChild);
  Export(env, exports, "readInForkedChild", ReadInForkedChild);
  Export(env, exports, "forkAndExit", ForkAndExit);
  Export(env, exports, "pageSize", PageSize);
  Export(env, exports, "pagemap", Pagemap);
  Export(env, exports, "minorFaults", MinorFaults);
  Export(env, exports, "majorFaults", MajorFaults);
  Export(env, exports, "deviceInfo", DeviceInfo);
  Export(env, exports, "deviceStats", DeviceStats);
  Export(env, exports, "resetStats", ResetStats);
  Export(env, exports, "pagePfn", PagePfn);
  Export(env, exports, "deleteModule", DeleteModule);
  Export(env, exports, "benchMapTouch", BenchMapTouch);
  Export(env, exports, "benchFill", BenchFill);
  Export(env, exports, "benchSequentialRead", BenchSequentialRead);
  Export(env, exports, "benchRandomRead", BenchRandomRead);
  Export(env, exports, "benchReadSyscall", BenchReadSyscall);
  Export(env, exports, "benchPread", BenchPread);
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace
}  // namespace mmapkit

// The macro pastes its argument into an identifier, so it needs a plain name.
using mmapkit::Init;
NODE_API_MODULE(mmapkit_native, Init)
