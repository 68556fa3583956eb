#include "store/group_commit.hpp"

namespace cllavio::store {

void GroupCommitter::run(const Work& work) {
  Item item{&work, nullptr, false};
  std::unique_lock lock(mu_);
  queue_.push_back(&item);
  while (!item.done) {
    if (leader_active_) {
      cv_.wait(lock);
      continue;
    }
    leader_active_ = true;
    std::vector<Item*> batch;
    batch.swap(queue_);
    lock.unlock();
    execute(batch);
    lock.lock();
    for (Item* i : batch) i->done = true;
    leader_active_ = false;
    cv_.notify_all();
  }
  if (item.error) std::rethrow_exception(item.error);
}

void GroupCommitter::execute(std::vector<Item*>& batch) {
  std::size_t committed = 0;
  try {
    lmdb::Txn txn(env_, lmdb::Txn::read_write);
    if (batch.size() == 1) {
      // Alone in its batch (one message at a time): the piece runs in the write
      // transaction itself. If it throws, nothing is committed, which is all a nested
      // transaction would roll back; a nested one costs LMDB a dirty-page list allocated
      // per message and a merge into its parent.
      Item* i = batch.front();
      try {
        (*i->work)(txn);
      } catch (...) {
        i->error = std::current_exception();
        return;  // txn aborts: nothing was written
      }
      committed = 1;
    } else {
      for (Item* i : batch) {
        try {
          lmdb::Txn nested(env_, txn);
          (*i->work)(nested);
          nested.commit();
          ++committed;
        } catch (...) {
          i->error = std::current_exception();
        }
      }
    }
    txn.commit();
  } catch (...) {
    // Beginning or committing the shared transaction failed: nothing was written.
    committed = 0;
    for (Item* i : batch)
      if (!i->error) i->error = std::current_exception();
  }
  std::lock_guard lock(mu_);
  if (committed > 0) {
    ++commits_;
    writes_ += committed;
  }
}

std::uint64_t GroupCommitter::commits() const {
  std::lock_guard lock(mu_);
  return commits_;
}

std::size_t GroupCommitter::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::uint64_t GroupCommitter::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

}  // namespace cllavio::store
