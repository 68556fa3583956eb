// Group commit: concurrent writers share one LMDB write transaction and one sync.
//
// Every milter thread ends its message with a small write; committing each one on
// its own costs an fsync per message. run() queues the caller's work; one caller
// at a time (the leader) takes everything queued, runs each piece in its own
// nested transaction inside one write transaction (a piece alone in its batch runs in
// the write transaction itself: nothing else to protect), commits once and wakes the
// others. A piece that throws is rolled back alone and its exception rethrown to
// its own caller; a failed commit is reported to every caller of that batch.
// run() returns only after the caller's writes are committed, so durability is
// exactly the environment's sync mode, with fewer syncs under concurrency.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

#include "store/lmdb.hpp"

namespace cllavio::store {

class GroupCommitter {
 public:
  using Work = std::function<void(lmdb::Txn&)>;

  explicit GroupCommitter(const lmdb::Env& env) : env_(env) {}

  void run(const Work& work);  // throws what work threw, or lmdb::Error from the commit

  std::uint64_t commits() const;  // write transactions committed so far
  std::uint64_t writes() const;   // pieces of work committed so far
  std::size_t queued() const;     // pieces waiting for the next commit

 private:
  struct Item {
    const Work* work;
    std::exception_ptr error;
    bool done = false;
  };
  void execute(std::vector<Item*>& batch);

  const lmdb::Env& env_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item*> queue_;
  bool leader_active_ = false;
  std::uint64_t commits_ = 0, writes_ = 0;
};

}  // namespace cllavio::store
