// The raw RocksDB of a store, opened behind the log's back to damage it on purpose.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "jobstore/eventlog/format.h"

namespace jobstore::testing {

class RawDb {
 public:
  explicit RawDb(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {eventlog::kEventsFamily, {}},
        {eventlog::kJobIndexFamily, {}}};
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(rocksdb::DB::Open({}, dir, cfs, &handles_, &raw).ok());
    db_.reset(raw);
  }
  ~RawDb() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  }
  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* meta() { return handles_[0]; }
  rocksdb::ColumnFamilyHandle* events() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* index() { return handles_[2]; }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace jobstore::testing
