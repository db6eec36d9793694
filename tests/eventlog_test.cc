// eventlog: record format, append, reads, reopen, tools' opening modes and injected faults.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <fstream>
#include <thread>

#include <rocksdb/db.h>

#include "jobstore/eventlog/event_log.h"
#include "jobstore/eventlog/format.h"
#include "jobstore/eventlog/record.h"
#include "support/faulty_fs.h"
#include "support/raw_db.h"
#include "support/temp_dir.h"

namespace jobstore::eventlog {
namespace {

using jobstore::testing::FaultyEnv;
using jobstore::testing::TempDir;

Event MakeEvent(std::uint64_t seq, std::string job, std::uint64_t version) {
  return Event{seq, std::move(job), version, EventType::kUpdated, 1'795'867'200'000 + (TimeMs)seq,
               {{"n", seq}, {"text", "héllo"}}};
}

std::vector<Event> ScanAll(const EventLog& log) {
  std::vector<Event> out;
  Status st = log.Scan(1, UINT64_MAX, [&](Event&& e) {
    out.push_back(std::move(e));
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

// The seqs of job `id`'s history as `log` reads it (a failed read fails the test, and gives none).
std::vector<std::uint64_t> ReadSeqs(const EventLog& log, const std::string& id) {
  auto read = log.ReadJob(id);
  EXPECT_TRUE(read.ok()) << id << ": " << read.status().ToString();
  std::vector<std::uint64_t> seqs;
  if (read.ok()) {
    for (const Event& e : *read) seqs.push_back(e.seq);
  }
  return seqs;
}

TEST(Record, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c("56789", Crc32c("1234")), 0xE3069283u);
}

TEST(Record, HardwareAndPortableCrc32cAgree) {
  std::mt19937 rng(7);
  for (int len = 0; len < 300; ++len) {
    std::string data;
    for (int i = 0; i < len; ++i) data.push_back(static_cast<char>(rng()));
    ASSERT_EQ(Crc32c(data), Crc32cPortable(data)) << len;
    ASSERT_EQ(Crc32c(data, 12345), Crc32cPortable(data, 12345)) << len;
  }
  EXPECT_EQ(Crc32cPortable("123456789"), 0xE3069283u);
}

TEST(Record, EncodeDecodeRoundTrip) {
  Event e = MakeEvent(7, "job-1", 3);
  e.type = EventType::kHitlAnswered;
  auto back = DecodeRecord(7, EncodeRecord(e));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, e);
}

TEST(Record, EveryFlippedByteIsCaught) {
  std::string rec = EncodeRecord(MakeEvent(7, "job-1", 3));
  for (std::size_t i = 0; i < rec.size(); ++i) {
    std::string bad = rec;
    bad[i] ^= 0x40;
    auto st = DecodeRecord(7, bad).status();
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << "byte " << i;
    EXPECT_NE(st.message().find("seq 7"), std::string::npos);
  }
}

TEST(Record, RecordUnderWrongSeqIsCaught) {
  EXPECT_EQ(DecodeRecord(8, EncodeRecord(MakeEvent(7, "j", 1))).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(DecodeRecord(1, "xy").status().code(), StatusCode::kCorruption);
}

TEST(EventLog, AppendsScansAndReadsByJob) {
  TempDir dir;
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ((*log)->LastSeq(), 0u);
  ASSERT_TRUE((*log)->TEST_Append({MakeEvent(1, "a", 1), MakeEvent(2, "b", 1)}).ok());
  ASSERT_TRUE((*log)->TEST_Append({MakeEvent(3, "a", 2)}).ok());
  EXPECT_EQ((*log)->LastSeq(), 3u);
  EXPECT_EQ(ScanAll(**log).size(), 3u);
  auto a = (*log)->ReadJob("a");
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].seq, 1u);
  EXPECT_EQ((*a)[1].seq, 3u);
  EXPECT_EQ((*log)->ReadJob("a", 2)->size(), 1u);
  EXPECT_TRUE((*log)->ReadJob("nope")->empty());
  std::vector<Event> window;
  ASSERT_TRUE((*log)->Scan(2, 2, [&](Event&& e) { window.push_back(e); return true; }).ok());
  ASSERT_EQ(window.size(), 1u);
  EXPECT_EQ(window[0].job_id, "b");
}

// The index entries of one append go in sorted (the events stay in seq order): a batch whose
// job ids come in no order, several events per job, reads back whole by job and by index scan.
TEST(EventLog, OneAppendOfManyJobsInNoOrderIndexesEachEvent) {
  TempDir dir;
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::mt19937 rng(11);
  std::vector<std::string> ids;
  for (int i = 0; i < 60; ++i) ids.push_back("job-" + std::to_string(rng() % 100000) + "-" + std::to_string(i));
  std::vector<Event> events;
  std::map<std::string, std::vector<std::uint64_t>> seqs_of;
  for (std::uint64_t seq = 1; seq <= 300; ++seq) {
    const std::string& id = ids[rng() % ids.size()];
    seqs_of[id].push_back(seq);
    events.push_back(MakeEvent(seq, id, seqs_of[id].size()));
  }
  ASSERT_TRUE((*log)->TEST_Append(events).ok());
  EXPECT_EQ(ScanAll(**log), events);
  for (const auto& [id, seqs] : seqs_of) EXPECT_EQ(ReadSeqs(**log, id), seqs) << id;
  std::size_t entries = 0;
  std::string last;
  ASSERT_TRUE((*log)->ScanJobIndex([&](std::string_view id, std::uint64_t seq, std::uint64_t version) {
    EXPECT_GE(std::string(id), last);
    last = std::string(id);
    const auto& seqs = seqs_of.at(last);
    const auto at = std::find(seqs.begin(), seqs.end(), seq);
    EXPECT_NE(at, seqs.end()) << id << " " << seq;
    if (at != seqs.end()) {
      EXPECT_EQ(version, static_cast<std::uint64_t>(at - seqs.begin()) + 1);
    }
    ++entries;
    return true;
  }).ok());
  EXPECT_EQ(entries, events.size());
}

TEST(EventLog, PrefixOfOneJobIdDoesNotLeakIntoAnother) {
  TempDir dir;
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE((*log)->TEST_Append({MakeEvent(1, "a", 1), MakeEvent(2, "ab", 1)}).ok());
  EXPECT_EQ((*log)->ReadJob("a")->size(), 1u);
}

// job_index hashes its memtable by job (event_log.cc, Families). A job's history and a scan
// across jobs read alike from the memtable, from table files written with the prefix extractor
// and from table files written without it (a log of an earlier release, as a plain RocksDB
// leaves it), in the server's and in the tools' opening modes.
TEST(EventLog, TheJobIndexReadsAlikeFromMemtableAndFromTableFilesOfAnyRelease) {
  TempDir dir;
  const std::vector<std::string> ids = {"schedule:b", "a", "schedule:a", "schedule:ab", "sch", "b"};
  std::map<std::string, std::vector<std::uint64_t>> seqs_of;
  std::uint64_t seq = 0;
  auto append_round = [&](EventLog& log) {
    std::vector<Event> events;
    for (const std::string& id : ids) {
      seqs_of[id].push_back(++seq);
      events.push_back(MakeEvent(seq, id, seqs_of[id].size()));
    }
    ASSERT_TRUE(log.TEST_Append(events).ok());
  };
  {
    auto log = EventLog::Open(dir.path());
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    append_round(**log);
    ASSERT_TRUE((*log)->Close().ok());  // flushed: a table file with the extractor
  }
  {
    testing::RawDb raw(dir.path());  // rewritten by a plain RocksDB: no extractor in the file
    ASSERT_TRUE(raw.db()->CompactRange({}, raw.index(), nullptr, nullptr).ok());
  }
  {
    auto log = EventLog::Open(dir.path());
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    append_round(**log);
    ASSERT_TRUE((*log)->Close().ok());
  }
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  append_round(**log);  // in the memtable only
  auto secondary = EventLog::OpenForTools(dir.path(), OpenMode::kSecondary, dir.Sub("..sec"));
  ASSERT_TRUE(secondary.ok()) << secondary.status().ToString();
  for (const EventLog* reader : {log->get(), secondary->get()}) {
    for (const auto& [id, seqs] : seqs_of) {
      EXPECT_EQ(ReadSeqs(*reader, id), seqs) << id;
      ASSERT_EQ(reader->ReadJob(id, seqs[1])->size(), 2u) << id;
    }
    auto scan = [&](std::string_view prefix) {
      std::vector<std::pair<std::string, std::uint64_t>> got;
      EXPECT_TRUE(reader->ScanJobIndex([&](std::string_view id, std::uint64_t s, std::uint64_t) {
        got.emplace_back(id, s);
        return true;
      }, prefix).ok());
      return got;
    };
    std::vector<std::pair<std::string, std::uint64_t>> want_all, want_schedules;
    for (const auto& [id, seqs] : seqs_of) {  // std::map: ids in key order
      for (std::uint64_t s : seqs) {
        want_all.emplace_back(id, s);
        if (id.starts_with("schedule:")) want_schedules.emplace_back(id, s);
      }
    }
    EXPECT_EQ(scan(""), want_all);
    EXPECT_EQ(scan("schedule:"), want_schedules);
    EXPECT_EQ(scan("sch").size(), want_schedules.size() + 3);
  }
}

// job_index's memtable buckets are sorted linked lists that turn into skip lists past 256 entries
// (event_log.cc, Families). From the memtable alone: one job whose history outgrows its list
// between appends, read back whole and from a seq; 4,000 jobs in 2^17 buckets (dozens of buckets
// shared by two jobs), each read back whole; and all of them in key order across jobs.
TEST(EventLog, TheJobIndexMemtableKeepsLongHistoriesAndSharedBuckets) {
  TempDir dir;
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::map<std::string, std::vector<std::uint64_t>> seqs_of;
  std::uint64_t seq = 0;
  for (int round = 0; round < 4; ++round) {  // "long" passes 256 entries within round 3
    std::vector<Event> events;
    for (int i = 0; i < 100; ++i) {
      seqs_of["long"].push_back(++seq);
      events.push_back(MakeEvent(seq, "long", seqs_of["long"].size()));
    }
    for (int j = 0; j < 1000; ++j) {
      const std::string id = "job-" + std::to_string(round * 1000 + j);
      seqs_of[id].push_back(++seq);
      events.push_back(MakeEvent(seq, id, 1));
    }
    ASSERT_TRUE((*log)->TEST_Append(events).ok());
  }
  for (const auto& [id, seqs] : seqs_of) ASSERT_EQ(ReadSeqs(**log, id), seqs) << id;
  const std::vector<std::uint64_t>& long_seqs = seqs_of["long"];
  ASSERT_EQ(long_seqs.size(), 400u);
  EXPECT_EQ((*log)->ReadJob("long", long_seqs[300])->size(), 100u);
  std::vector<std::pair<std::string, std::uint64_t>> want, got;
  for (const auto& [id, seqs] : seqs_of) {
    for (std::uint64_t s : seqs) want.emplace_back(id, s);
  }
  ASSERT_TRUE((*log)->ScanJobIndex([&](std::string_view id, std::uint64_t s, std::uint64_t) {
    got.emplace_back(id, s);
    return true;
  }).ok());
  EXPECT_EQ(got, want);
}

TEST(EventLog, RejectsGapsAndReordering) {
  TempDir dir;
  auto log = EventLog::Open(dir.path());
  EXPECT_FALSE((*log)->TEST_Append({MakeEvent(2, "a", 1)}).ok());
  EXPECT_FALSE((*log)->TEST_Append({MakeEvent(1, "a", 1), MakeEvent(3, "a", 2)}).ok());
  EXPECT_EQ((*log)->LastSeq(), 0u);
  EXPECT_TRUE(ScanAll(**log).empty());
}

TEST(EventLog, ReopenKeepsEverything) {
  TempDir dir;
  {
    auto log = EventLog::Open(dir.path());
    ASSERT_TRUE((*log)->TEST_Append({MakeEvent(1, "a", 1), MakeEvent(2, "a", 2)}).ok());
  }
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->LastSeq(), 2u);
  EXPECT_EQ(ScanAll(**log)[1], MakeEvent(2, "a", 2));
}

// A clean close flushes, so the next start has no WAL to replay (only a crash leaves one).
TEST(EventLog, CleanCloseLeavesNoWalToReplay) {
  TempDir dir;
  auto wal_bytes = [&] {
    std::uintmax_t total = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      if (f.path().extension() == ".log") total += f.file_size();
    }
    return total;
  };
  {
    auto log = EventLog::Open(dir.path());
    std::vector<Event> events;
    for (std::uint64_t seq = 1; seq <= 2000; ++seq) events.push_back(MakeEvent(seq, "j" + std::to_string(seq), 1));
    ASSERT_TRUE((*log)->TEST_Append(events).ok());
    EXPECT_GT(wal_bytes(), 50'000u);  // the events are in the WAL while the log is open
    ASSERT_TRUE((*log)->Close().ok());
  }
  EXPECT_EQ(wal_bytes(), 0u);
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->LastSeq(), 2000u);
  EXPECT_EQ(ScanAll(**log).size(), 2000u);
}

TEST(EventLog, SecondServerOnSameDirectoryIsRefused) {
  TempDir dir;
  auto first = EventLog::Open(dir.path());
  ASSERT_TRUE(first.ok());
  auto second = EventLog::Open(dir.path());
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

TEST(EventLog, ToolsReadWhileTheServerHoldsTheLog) {
  TempDir dir;
  auto server = EventLog::Open(dir.path());
  ASSERT_TRUE((*server)->TEST_Append({MakeEvent(1, "a", 1)}).ok());
  auto ro = EventLog::OpenForTools(dir.path(), OpenMode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ((*ro)->LastSeq(), 1u);
  auto secondary = EventLog::OpenForTools(dir.path(), OpenMode::kSecondary, dir.Sub("..sec"));
  ASSERT_TRUE(secondary.ok()) << secondary.status().ToString();
  ASSERT_TRUE((*server)->TEST_Append({MakeEvent(2, "a", 2)}).ok());
  ASSERT_TRUE((*secondary)->TryCatchUpWithPrimary().ok());
  EXPECT_EQ((*secondary)->LastSeq(), 2u);
  EXPECT_EQ(ScanAll(**secondary).size(), 2u);
  EXPECT_FALSE((*ro)->TEST_Append({MakeEvent(3, "a", 3)}).ok());
}

TEST(EventLog, RefusesNewerFormatAndForeignDirectories) {
  TempDir dir;
  {
    auto log = EventLog::Open(dir.path());
    ASSERT_TRUE(log.ok());
  }
  {  // pretend a newer jobstore wrote it
    jobstore::testing::RawDb raw(dir.path());
    std::string v;
    PutFixed32LE(&v, kFormatVersion + 1);
    ASSERT_TRUE(raw.db()->Put({}, raw.meta(), kMetaFormatVersion, v).ok());
  }
  auto newer = EventLog::Open(dir.path());
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.status().message().find("newer"), std::string::npos);

  TempDir foreign;
  std::ofstream(foreign.Sub("notes.txt")) << "hello";
  auto refused = EventLog::Open(foreign.path());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not a jobstore"), std::string::npos);
  EXPECT_FALSE(EventLog::OpenForTools(dir.Sub("missing"), OpenMode::kReadOnly).ok());
}

TEST(EventLog, DataDirectoryIsOwnerOnly) {
  TempDir dir;
  auto log = EventLog::Open(dir.Sub("data"));
  ASSERT_TRUE(log.ok());
  auto perms = std::filesystem::status(dir.Sub("data")).permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all, std::filesystem::perms::owner_all);
}

TEST(EventLog, InjectedWriteErrorSurfacesAndNothingIsWrittenThenWritesResume) {
  TempDir dir;
  FaultyEnv faulty;
  LogOptions options;
  options.env = faulty.env.get();
  auto log = EventLog::Open(dir.path(), options);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->TEST_Append({MakeEvent(1, "a", 1)}).ok());
  faulty.fs->set_failing(true);
  Status failed = (*log)->TEST_Append({MakeEvent(2, "a", 2)});
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable) << failed.ToString();
  EXPECT_EQ((*log)->LastSeq(), 1u);
  EXPECT_EQ(ScanAll(**log).size(), 1u);
  EXPECT_FALSE((*log)->TEST_Append({MakeEvent(2, "a", 2)}).ok());  // still failing
  EXPECT_EQ((*log)->LastSeq(), 1u);
  faulty.fs->set_failing(false);
  // The log resumes RocksDB itself before the next write (its background recovery is off), so
  // the first append after space returns succeeds.
  Status resumed = (*log)->TEST_Append({MakeEvent(2, "a", 2)});
  EXPECT_TRUE(resumed.ok()) << resumed.ToString();
  EXPECT_EQ(ScanAll(**log).size(), 2u);
}

TEST(EventLog, HardIoErrorSurfacesAndWritesNothing) {
  TempDir dir;
  FaultyEnv faulty;
  faulty.fs->set_hard_errors(true);
  LogOptions options;
  options.env = faulty.env.get();
  auto log = EventLog::Open(dir.path(), options);
  ASSERT_TRUE(log.ok());
  faulty.fs->set_failing(true);
  EXPECT_EQ((*log)->TEST_Append({MakeEvent(1, "a", 1)}).code(), StatusCode::kUnavailable);
  EXPECT_EQ((*log)->LastSeq(), 0u);
  EXPECT_TRUE(ScanAll(**log).empty());
  // RocksDB treats a plain I/O error on the WAL as fatal: Resume() refuses even once the disk
  // works again, and says why (a restart reopens the log; documented in the README).
  faulty.fs->set_failing(false);
  Status retried = (*log)->TEST_Append({MakeEvent(1, "a", 1)});
  EXPECT_EQ(retried.code(), StatusCode::kUnavailable);
  EXPECT_NE(retried.message().find("resuming the event log"), std::string::npos) << retried.ToString();
  EXPECT_EQ((*log)->LastSeq(), 0u);
}

TEST(EventLog, CorruptRecordOnDiskIsReportedWithItsSeq) {
  TempDir dir;
  {
    auto log = EventLog::Open(dir.path());
    ASSERT_TRUE((*log)->TEST_Append({MakeEvent(1, "a", 1), MakeEvent(2, "a", 2)}).ok());
  }
  {  // overwrite seq 2's record with a flipped byte, behind the log's back
    jobstore::testing::RawDb raw(dir.path());
    std::string rec = EncodeRecord(MakeEvent(2, "a", 2));
    rec[rec.size() - 2] ^= 1;
    ASSERT_TRUE(raw.db()->Put({}, raw.events(), SeqKey(2), rec).ok());
  }
  auto log = EventLog::Open(dir.path());
  ASSERT_TRUE(log.ok());
  Status st = (*log)->Scan(1, UINT64_MAX, [](Event&&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("seq 2"), std::string::npos) << st.message();
}

TEST(EventLog, SyncModesParse) {
  EXPECT_EQ(*ParseSyncMode("always"), SyncMode::kAlways);
  EXPECT_EQ(*ParseSyncMode("batch"), SyncMode::kBatch);
  EXPECT_EQ(*ParseSyncMode("none"), SyncMode::kNone);
  EXPECT_FALSE(ParseSyncMode("sometimes").ok());
}

}  // namespace
}  // namespace jobstore::eventlog
