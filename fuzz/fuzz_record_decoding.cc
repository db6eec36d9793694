// Fuzzes the decoding of event records: what `inspect`, replay and the server read back from
// RocksDB, where a torn or flipped record must give kCorruption, never a crash or a wrong event.
// Input: a mode byte, an 8-byte seq, then the record bytes. In odd modes the target writes the
// right CRC-32C into the record first, so the fuzzer gets past the checksum and reaches the
// header and JSON parsing behind it.
//
// Invariants: DecodeRecord and DecodeRecordView agree on the header; a decoded event encodes to
// a record that decodes to the same event.
//
// With mode bit 2 set, the bytes are a snapshot's job state instead (DecodeJobState): they
// decode or give an error, and a decoded state encodes to bytes that decode to the same bytes.
// With mode bit 4 set (and bit 2 clear), the bytes are one CBOR value: what our reader
// (internal::DecodeCbor) accepts, nlohmann's from_cbor accepts too, as the same value.
#include <string>

#include "fuzz_check.h"
#include "jobstore/core/internal/cbor_reader.h"
#include "jobstore/store/job_state_codec.h"
#include "jobstore/eventlog/format.h"
#include "jobstore/eventlog/record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace jobstore;
  using namespace jobstore::eventlog;
  fuzz::FuzzInput in(data, size);
  std::uint8_t mode = in.Byte();
  std::uint64_t seq = 0;
  for (int i = 0; i < 8; ++i) seq = (seq << 8) | in.Byte();
  std::string record(in.Rest());
  if (mode & 2) {
    auto job = DecodeJobState(record);
    if (!job.ok()) return 0;
    std::string encoded, again;
    EncodeJobState(*job, &encoded);
    auto decoded = DecodeJobState(encoded);
    FUZZ_CHECK(decoded.ok());
    EncodeJobState(*decoded, &again);
    FUZZ_CHECK(again == encoded);  // bytes, not values: a CBOR NaN is not equal to itself
    return 0;
  }
  if (mode & 4) {
    Json ours;
    if (!internal::DecodeCbor(record, &ours)) return 0;
    Json theirs;
    try {
      theirs = Json::from_cbor(record, /*strict=*/true, /*allow_exceptions=*/false);
    } catch (const Json::exception&) {
      FUZZ_CHECK(false);
    }
    FUZZ_CHECK(!theirs.is_discarded());
    FUZZ_CHECK(Json::to_cbor(ours) == Json::to_cbor(theirs));
    return 0;
  }
  if ((mode & 1) && record.size() >= kRecordHeaderSize) {
    std::string covered = SeqKey(seq) + record.substr(kRecordHeaderSize);
    std::string crc;
    PutFixed32LE(&crc, Crc32c(covered));
    record.replace(1, 4, crc);
  }

  auto event = DecodeRecord(seq, record);
  auto view = DecodeRecordView(seq, record);
  if (!event.ok()) {
    FUZZ_CHECK(event.status().code() == StatusCode::kCorruption);
    return 0;
  }
  FUZZ_CHECK(view.ok());
  FUZZ_CHECK(view->seq == seq && event->seq == seq);
  FUZZ_CHECK(view->type == event->type && view->version == event->version);
  FUZZ_CHECK(view->at == event->at && view->job_id == event->job_id);
  FUZZ_CHECK(static_cast<std::uint8_t>(event->type) >= 1 &&
             static_cast<std::uint8_t>(event->type) <= kMaxEventType);

  auto again = DecodeRecord(seq, EncodeRecord(*event));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *event);
  return 0;
}
