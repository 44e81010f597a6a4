// The mmapkit devices' own ioctls (kmod/uapi/mmapkit.h): what a device is,
// its event counters, and the PFN behind a buffer page, so tests can check
// the driver's bookkeeping and compare it with /proc/self/pagemap.
#include <sys/ioctl.h>

#include <cctype>
#include <cerrno>
#include <string>
#include <string_view>

#include "args.h"
#include "bindings.h"
#include "errors.h"
#include "mmapkit.h"

namespace mmapkit {
namespace {

// A counter's C name as JavaScript spells it: mmap_einval_range is
// mmapEinvalRange (the StatName type of native/api.ts, made the same way).
std::string CamelCase(std::string_view snake) {
  std::string camel;
  bool upper = false;
  for (const char c : snake) {
    if (c == '_') {
      upper = true;
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    camel += static_cast<char>(upper ? std::toupper(byte) : byte);
    upper = false;
  }
  return camel;
}

// ioctl() with Node's fs error shape on failure. No retry on EINTR: these
// requests do not sleep, and RESET_STATS must not run twice anyway.
void Ioctl(Napi::Env env, int fd, unsigned long request, void* arg) {
  if (ioctl(fd, request, arg) != 0) throw ErrnoError(env, errno, "ioctl");
}

// A kind this addon does not know means the driver and the header it was
// built against have drifted apart: an error, not a string to compare.
const char* KindName(Napi::Env env, __u32 kind) {
  switch (kind) {
    case MMAPKIT_KIND_REMAP:
      return "remap";
    case MMAPKIT_KIND_FAULT:
      return "fault";
    case MMAPKIT_KIND_RO:
      return "ro";
  }
  throw CodedError(env, "EPROTO",
                   "EPROTO: unknown device kind " + std::to_string(kind) +
                       " from MMAPKIT_IOC_INFO");
}

// What the driver fills in for a request on the fd in info[0].
template <typename Reply>
Reply Query(const Napi::CallbackInfo& info, unsigned long request) {
  const int fd = ToInt32(info[0], "fd");
  Reply reply{};
  Ioctl(info.Env(), fd, request, &reply);
  return reply;
}

}  // namespace

Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const mmapkit_info device = Query<mmapkit_info>(info, MMAPKIT_IOC_INFO);
  Napi::Object result = Napi::Object::New(env);
  result.Set("bufferSize", Napi::BigInt::New(env, static_cast<uint64_t>(
                                                      device.buffer_size)));
  result.Set("pageSize", Napi::Number::New(env, device.page_size));
  result.Set("kind", Napi::String::New(env, KindName(env, device.kind)));
  result.Set("contiguous", Napi::Boolean::New(env, device.contiguous != 0));
  return result;
}

Napi::Value DeviceStats(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const mmapkit_stats stats = Query<mmapkit_stats>(info, MMAPKIT_IOC_STATS);
  Napi::Object result = Napi::Object::New(env);
  const auto set = [&](const char* field, uint64_t count) {
    result.Set(CamelCase(field), Napi::BigInt::New(env, count));
  };
#define MMAPKIT_EVENT(name) set(#name, stats.name)
#define MMAPKIT_STATE(name) set(#name, stats.name)
  MMAPKIT_STATS
#undef MMAPKIT_EVENT
#undef MMAPKIT_STATE
  return result;
}

Napi::Value ResetStats(const Napi::CallbackInfo& info) {
  const int fd = ToInt32(info[0], "fd");
  Ioctl(info.Env(), fd, MMAPKIT_IOC_RESET_STATS, nullptr);
  return info.Env().Undefined();
}

Napi::Value PagePfn(const Napi::CallbackInfo& info) {
  const int fd = ToInt32(info[0], "fd");
  mmapkit_pfn request{};
  request.page = ToUint64(info[1], "page");
  Ioctl(info.Env(), fd, MMAPKIT_IOC_PFN, &request);
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(request.pfn));
}

}  // namespace mmapkit
