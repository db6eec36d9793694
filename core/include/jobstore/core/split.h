// Splitting comma-separated lists (query parameters, header values, flag values).
#pragma once

#include <string_view>
#include <vector>

namespace jobstore {

// Every part between commas, empty ones included ("a,,b" -> "a", "", "b"; "" -> ""). The views
// point into `s`.
inline std::vector<std::string_view> SplitComma(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    parts.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return parts;
}

}  // namespace jobstore
