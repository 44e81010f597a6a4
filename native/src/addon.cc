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
#define MMAPKIT_CONSTANT(name) {#name, name},
  static constexpr std::pair<const char*, int> kConstants[] = {
      MMAPKIT_NATIVE_CONSTANTS(MMAPKIT_CONSTANT)};
#undef MMAPKIT_CONSTANT
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
#define MMAPKIT_EXPORT(name, function) Export(env, exports, #name, function);
  MMAPKIT_NATIVE_FUNCTIONS(MMAPKIT_EXPORT)
#undef MMAPKIT_EXPORT
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace
}  // namespace mmapkit

// The macro pastes its argument into an identifier, so it needs a plain name.
using mmapkit::Init;
NODE_API_MODULE(mmapkit_native, Init)
