// Reading the server's /metrics text (Prometheus exposition) in tests.
#pragma once

#include <string>

namespace jobstore::testing {

// The value of the first sample of metric `name` in /metrics text, with or without labels
// (`name 4` or `name{instance="a"} 4`); -1 when it is absent.
inline double MetricValue(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name;
  for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    auto value = at + key.size();
    if (value < text.size() && text[value] == '{') {
      value = text.find("} ", value);
      if (value == std::string::npos) return -1;
      value += 2;
    } else if (value < text.size() && text[value] == ' ') {
      value += 1;
    } else {
      continue;  // another metric whose name starts with this one
    }
    return std::stod(text.substr(value));
  }
  return -1;
}

}  // namespace jobstore::testing
