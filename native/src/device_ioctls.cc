// The mmapkit devices' own ioctls (kmod/uapi/mmapkit.h): what a device is,
// its event counters, and the PFN behind a buffer page, so tests can check
// the driver's bookkeeping and compare it with /proc/self/pagemap.
#include <sys/ioctl.h>

#include <cerrno>
#include <iterator>
#include <string>
#include <utility>

#include "args.h"
#include "bindings.h"
#include "errors.h"
#include "mmapkit.h"

namespace mmapkit {
namespace {

// Every field of struct mmapkit_stats with its name in JavaScript (the
// StatName type of native/index.ts), in the struct's order.
constexpr std::pair<const char*, __u64 mmapkit_stats::*> kStatFields[] = {
    {"mmapOk", &mmapkit_stats::mmap_ok},
    {"mmapEinvalRange", &mmapkit_stats::mmap_einval_range},
    {"mmapEinvalCow", &mmapkit_stats::mmap_einval_cow},
    {"mmapEaccesWrite", &mmapkit_stats::mmap_eacces_write},
    {"mmapOtherError", &mmapkit_stats::mmap_other_error},
    {"liveVmas", &mmapkit_stats::live_vmas},
    {"vmaOpen", &mmapkit_stats::vma_open},
    {"vmaClose", &mmapkit_stats::vma_close},
    {"faultsServed", &mmapkit_stats::faults_served},
    {"faultsRefused", &mmapkit_stats::faults_refused},
};

// Ten __u64 counters and nothing else: a field added to the struct without
// a row above fails the build here instead of going missing in JavaScript.
static_assert(sizeof(mmapkit_stats) ==
              std::size(kStatFields) * sizeof(__u64));

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

}  // namespace

Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int fd = ToInt32(info[0], "fd");
  mmapkit_info device{};
  Ioctl(env, fd, MMAPKIT_IOC_INFO, &device);
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
  const int fd = ToInt32(info[0], "fd");
  mmapkit_stats stats{};
  Ioctl(env, fd, MMAPKIT_IOC_STATS, &stats);
  Napi::Object result = Napi::Object::New(env);
  for (const auto& [name, field] : kStatFields) {
    const uint64_t count = stats.*field;
    result.Set(name, Napi::BigInt::New(env, count));
  }
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
