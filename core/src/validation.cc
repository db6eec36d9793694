#include "jobstore/core/validation.h"

#include <string>

namespace jobstore {

Status ValidateJobId(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return InvalidArgument("job_id must be 1 to 128 characters of [A-Za-z0-9._:-]");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return InvalidArgument("job_id may only hold the characters [A-Za-z0-9._:-]");
  }
  if (id == "batch" || id == "claim") {
    return InvalidArgument("job_id '" + std::string(id) + "' is reserved");
  }
  return Status::Ok();
}

Status ValidateLabels(const Json& labels, const Limits& limits, bool allow_null) {
  if (!labels.is_object()) return InvalidArgument("labels must be an object of strings");
  if (labels.size() > limits.max_labels) {
    return InvalidArgument("labels may hold at most " + std::to_string(limits.max_labels) +
                           " entries");
  }
  for (const auto& [key, value] : labels.items()) {
    if (key.empty() || key.size() > limits.max_label_key_bytes) {
      return InvalidArgument("label keys must be 1 to " +
                             std::to_string(limits.max_label_key_bytes) + " bytes");
    }
    if (key.find(':') != std::string::npos) {
      return InvalidArgument("label key '" + key + "' may not contain ':'");
    }
    if (value.is_null() && allow_null) continue;
    if (!value.is_string()) return InvalidArgument("label '" + key + "' must be a string");
    if (value.get_ref<const std::string&>().size() > limits.max_label_value_bytes) {
      return InvalidArgument("label '" + key + "' is longer than " +
                             std::to_string(limits.max_label_value_bytes) + " bytes");
    }
  }
  return Status::Ok();
}

std::size_t JsonDepth(const Json& j) {
  if (!j.is_structured()) return 0;
  std::size_t deepest = 0;
  for (const auto& child : j) deepest = std::max(deepest, JsonDepth(child));
  return deepest + 1;
}

Status ValidateProgress(const Json& progress) {
  if (!progress.is_object()) return InvalidArgument("progress must be an object");
  if (auto it = progress.find("percent"); it != progress.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 100) {
      return InvalidArgument("progress.percent must be a number from 0 to 100");
    }
  }
  for (const char* key : {"phase", "message"}) {
    if (auto it = progress.find(key); it != progress.end() && !it->is_null() && !it->is_string()) {
      return InvalidArgument(std::string("progress.") + key + " must be a string");
    }
  }
  return Status::Ok();
}

}  // namespace jobstore
