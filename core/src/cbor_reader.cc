#include "jobstore/core/internal/cbor_reader.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace jobstore::internal {
namespace {

using Json = nlohmann::json;

class CborReader {
 public:
  explicit CborReader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  bool ReadAll(Json* out) { return Item(out, 0) && p_ == end_; }

 private:
  std::size_t Left() const { return static_cast<std::size_t>(end_ - p_); }

  bool BigEndian(int bytes, std::uint64_t* v) {
    if (Left() < static_cast<std::size_t>(bytes)) return false;
    *v = 0;
    for (int i = 0; i < bytes; ++i) *v = (*v << 8) | static_cast<std::uint8_t>(*p_++);
    return true;
  }

  // The argument of an item whose initial byte had additional information `info`.
  bool Argument(std::uint8_t info, std::uint64_t* v) {
    if (info < 24) {
      *v = info;
      return true;
    }
    switch (info) {
      case 24: return BigEndian(1, v);
      case 25: return BigEndian(2, v);
      case 26: return BigEndian(4, v);
      case 27: return BigEndian(8, v);
      default: return false;  // 28-30 reserved, 31 indefinite length
    }
  }

  bool Text(std::uint64_t length, std::string* out) {
    if (length > Left()) return false;
    out->assign(p_, length);
    p_ += length;
    return true;
  }

  static double HalfToDouble(std::uint16_t h) {
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    double value;
    if (exponent == 0) {
      value = std::ldexp(mantissa, -24);
    } else if (exponent != 31) {
      value = std::ldexp(mantissa + 1024, exponent - 25);
    } else {
      value = mantissa == 0 ? std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::quiet_NaN();
    }
    return (h & 0x8000) ? -value : value;
  }

  bool Item(Json* out, int depth) {
    if (depth > kMaxCborDepth || p_ == end_) return false;
    const auto initial = static_cast<std::uint8_t>(*p_++);
    const std::uint8_t major = initial >> 5;
    const std::uint8_t info = initial & 0x1f;
    if (major == 7) return Simple(info, out);
    std::uint64_t arg = 0;
    if (!Argument(info, &arg)) return false;
    switch (major) {
      case 0:
        *out = arg;
        return true;
      case 1:
        if (arg > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
        *out = -1 - static_cast<std::int64_t>(arg);
        return true;
      case 3: {
        std::string s;
        if (!Text(arg, &s)) return false;
        *out = std::move(s);
        return true;
      }
      case 4: {
        if (arg > Left()) return false;  // every element takes at least a byte
        *out = Json::array();
        auto& array = out->get_ref<Json::array_t&>();
        array.reserve(arg);
        for (std::uint64_t i = 0; i < arg; ++i) {
          if (!Item(&array.emplace_back(), depth + 1)) return false;
        }
        return true;
      }
      case 5: {
        if (arg > Left() / 2) return false;  // every entry takes at least two bytes
        *out = Json::object();
        auto& object = out->get_ref<Json::object_t&>();
        for (std::uint64_t i = 0; i < arg; ++i) {
          if (p_ == end_ || static_cast<std::uint8_t>(*p_) >> 5 != 3) return false;  // text keys
          std::uint64_t key_length = 0;
          std::string key;
          if (!Argument(static_cast<std::uint8_t>(*p_++) & 0x1f, &key_length) ||
              !Text(key_length, &key)) {
            return false;
          }
          Json value;
          if (!Item(&value, depth + 1)) return false;
          // nlohmann writes keys in order, so each one goes at the end; a repeated key keeps
          // its last value, as nlohmann's own reader does.
          object.insert_or_assign(object.end(), std::move(key), std::move(value));
        }
        return true;
      }
      default:
        return false;  // 2: byte strings, 6: tags
    }
  }

  bool Simple(std::uint8_t info, Json* out) {
    std::uint64_t bits = 0;
    switch (info) {
      case 20: *out = false; return true;
      case 21: *out = true; return true;
      case 22: *out = nullptr; return true;
      case 25:
        if (!BigEndian(2, &bits)) return false;
        *out = HalfToDouble(static_cast<std::uint16_t>(bits));
        return true;
      case 26: {
        if (!BigEndian(4, &bits)) return false;
        float f;
        const auto u = static_cast<std::uint32_t>(bits);
        std::memcpy(&f, &u, sizeof f);
        *out = static_cast<double>(f);
        return true;
      }
      case 27: {
        if (!BigEndian(8, &bits)) return false;
        double d;
        std::memcpy(&d, &bits, sizeof d);
        *out = d;
        return true;
      }
      default:
        return false;  // undefined, other simple values, break
    }
  }

  const char* p_;
  const char* end_;
};

}  // namespace

bool DecodeCbor(std::string_view bytes, Json* out) { return CborReader(bytes).ReadAll(out); }

}  // namespace jobstore::internal
