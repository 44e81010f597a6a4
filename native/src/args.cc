#include "args.h"

#include <cmath>

namespace mmapkit {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

[[noreturn]] void ThrowTypeError(const Napi::Value& value, const char* name,
                                 const char* expected) {
  throw Napi::TypeError::New(value.Env(),
                             std::string(name) + " must be " + expected);
}

bool IsIntegerInRange(const Napi::Value& value, double min, double max) {
  if (!value.IsNumber()) return false;
  const double number = value.As<Napi::Number>().DoubleValue();
  return std::trunc(number) == number && number >= min && number <= max;
}

// A string for an API that reads up to the first NUL, where an embedded
// one would silently cut it short.
std::string ToCString(const Napi::Value& value, const char* name) {
  if (!value.IsString()) ThrowTypeError(value, name, "a string");
  std::string text = value.As<Napi::String>().Utf8Value();
  if (text.find('\0') != std::string::npos) {
    ThrowTypeError(value, name, "a string without null bytes");
  }
  return text;
}

}  // namespace

uint64_t ToUint64(const Napi::Value& value, const char* name) {
  if (!value.IsBigInt()) ThrowTypeError(value, name, "a BigInt");
  bool lossless = false;
  const uint64_t result = value.As<Napi::BigInt>().Uint64Value(&lossless);
  // Uint64Value reports negative values and values >= 2^64 as lossy.
  if (!lossless) ThrowTypeError(value, name, "a BigInt in [0, 2^64)");
  return result;
}

int32_t ToInt32(const Napi::Value& value, const char* name) {
  if (!IsIntegerInRange(value, INT32_MIN, INT32_MAX)) {
    ThrowTypeError(value, name, "an integer in the int32 range");
  }
  return value.As<Napi::Number>().Int32Value();
}

size_t ToSize(const Napi::Value& value, const char* name) {
  if (!IsIntegerInRange(value, 0, kMaxSafeInteger)) {
    ThrowTypeError(value, name, "a non-negative safe integer");
  }
  return static_cast<size_t>(value.As<Napi::Number>().Int64Value());
}

std::string ToPath(const Napi::Value& value, const char* name) {
  return ToCString(value, name);
}

std::string ToName(const Napi::Value& value, const char* name) {
  return ToCString(value, name);
}

bool ToIsWrite(const Napi::Value& value, const char* name) {
  const std::string access = value.IsString()
                                 ? value.As<Napi::String>().Utf8Value()
                                 : std::string();
  if (access != "read" && access != "write") {
    ThrowTypeError(value, name, "'read' or 'write'");
  }
  return access == "write";
}

Napi::Uint8Array ToBytes(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() ||
      value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowTypeError(value, name, "a Uint8Array");
  }
  return value.As<Napi::Uint8Array>();
}

Range ToRange(const Napi::CallbackInfo& info) {
  const uint64_t addr = ToUint64(info[0], "addr");
  return {ToPointer(addr), ToUint64(info[1], "length")};
}

}  // namespace mmapkit
