// pipesched: the two pieces of JSON every writer needs — strings and numbers.
#pragma once

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>

namespace pipesched {

/// `s` as a JSON string, quotes included: `"` and `\` escaped, control characters as \u00XX.
inline std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[(c >> 4) & 0xf];
      out += hex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

/// `v` as a JSON number with up to 10 significant digits (as printf's %.10g, whatever the
/// locale); `null` when it is not finite (JSON has no NaN or infinity).
inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == 0) return "0"; // no "-0"
  char buf[64];
  auto const res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 10);
  return std::string(buf, res.ptr);
}

} // namespace pipesched
