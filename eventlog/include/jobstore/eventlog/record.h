// Encoding and decoding of one event record (grammar in format.h).
#pragma once

#include <string>
#include <string_view>

#include "jobstore/core/event.h"
#include "jobstore/core/status.h"

namespace jobstore::eventlog {

// The record bytes for `event` (its seq goes into the key and the checksum).
std::string EncodeRecord(const Event& event);

// Decodes the record stored under `seq`. kCorruption names the seq on a checksum mismatch, an
// unknown format or type, a short record, or data that is not JSON.
StatusOr<Event> DecodeRecord(std::uint64_t seq, std::string_view record);

// CRC-32C of `data`, continuing from `crc` (0 to start).
std::uint32_t Crc32c(std::string_view data, std::uint32_t crc = 0);

}  // namespace jobstore::eventlog
