// RocksDB's own diagnostics (its info log), sent to the server's log instead of a LOG file in
// the data directory.
//
// Why: RocksDB writes its LOG file on the data volume. When that volume is full, a LOG write
// fails, and Debian's librocksdb (built with assertions) aborts on the next LOG line
// (WritableFileWriter::AssertFalseAndGetStatusForPrevError), which a full-disk test hit while
// RocksDB was reporting the very error. Only warnings and worse are forwarded; RocksDB's
// periodic statistics dumps are not.
#pragma once

#include <memory>

#include <rocksdb/env.h>

namespace jobstore::eventlog {

std::shared_ptr<rocksdb::Logger> MakeRocksDbLogger();

}  // namespace jobstore::eventlog
