#include "args.h"
#include "bindings.h"
#include "errors.h"
#include "fault_guard.h"

namespace mmapkit {

Napi::Value ReadBytes(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const size_t length = ToSize(info[1], "length");
  // Allocated before the guarded copy: nothing may allocate while armed.
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(info.Env(), length);
  Fault fault;
  if (!GuardedRead(addr, out.Data(), length, &fault)) {
    throw FaultError(info.Env(), fault);
  }
  return out;
}

Napi::Value WriteBytes(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const Napi::Uint8Array data = ToBytes(info[1], "data");
  Fault fault;
  if (!GuardedWrite(addr, data.Data(), data.ElementLength(), &fault)) {
    throw FaultError(info.Env(), fault);
  }
  return info.Env().Undefined();
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  const bool write = ToIsWrite(info[1], "access");
  Fault fault;
  if (GuardedProbe(addr, write, &fault)) {
    return Napi::String::New(info.Env(), "ok");
  }
  // A touch that never completes has no signal to report: it is an error.
  if (fault.stalled) throw FaultError(info.Env(), fault);
  return Napi::String::New(info.Env(), SignalCode(fault.signo));
}

}  // namespace mmapkit
