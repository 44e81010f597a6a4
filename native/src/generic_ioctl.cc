// ioctl() on any fd with the argument as raw bytes: the one primitive on
// which profile setups (DRM, V4L2, ALSA, dma-buf...) lay their struct
// layouts, written once per driver family in TypeScript. The kernel reads
// and writes the argument in place; the bytes after the call are returned
// as a copy, so that the answer also survives a trip over the guest
// protocol, where an argument is never the caller's own buffer.
#include <sys/ioctl.h>

#include <cerrno>
#include <vector>

#include "args.h"
#include "bindings.h"
#include "errors.h"

namespace mmapkit {

Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int fd = ToInt32(info[0], "fd");
  // _IOC requests are 32-bit encodings on Linux; a BigInt keeps the top bit
  // (_IOC_READ) exact where a JavaScript number of int32 would not.
  const uint64_t request = ToUint64(info[1], "request");
  const Napi::Uint8Array arg = ToBytes(info[2], "arg");
  // A private copy: the caller's buffer may be detached or shared while
  // the kernel writes, and an empty argument is passed as NULL (no-arg
  // requests such as SNDRV_PCM_IOCTL_PREPARE).
  std::vector<uint8_t> bytes(arg.Data(), arg.Data() + arg.ByteLength());
  int result;
  do {
    result = ioctl(fd, static_cast<unsigned long>(request),
                   bytes.empty() ? nullptr : bytes.data());
  } while (result < 0 && errno == EINTR);
  if (result < 0) throw ErrnoError(env, errno, "ioctl");
  Napi::Object answer = Napi::Object::New(env);
  answer.Set("result", Napi::Number::New(env, result));
  answer.Set("arg", Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
  return answer;
}

}  // namespace mmapkit
