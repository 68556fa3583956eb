// See thread_reuse.hpp.
#include "milter/thread_reuse.hpp"

#include <condition_variable>
#include <mutex>
#include <vector>

namespace cllavio::milter::thread_reuse {
namespace {

struct Slot {
  void* (*routine)(void*) = nullptr;  // the next routine; null while parked without one
  void* arg = nullptr;
  pthread_t self{};
  std::condition_variable cv;
};

// Never destroyed: pool threads may still finish a routine while exit() runs static destructors.
struct Pool {
  std::mutex mu;
  std::vector<Slot*> parked;  // LIFO: the most recently parked thread has the warmest stack
  Stats counters;
};
Pool& pool = *new Pool;
thread_local bool in_pool = false;

void* pool_thread(void* p) {
  auto* slot = static_cast<Slot*>(p);
  in_pool = true;
  slot->self = pthread_self();
  for (;;) {
    void* (*routine)(void*) = slot->routine;
    void* arg = slot->arg;
    routine(arg);
    std::unique_lock lock(pool.mu);
    slot->routine = nullptr;
    if (pool.parked.size() >= kMaxParked) break;
    pool.parked.push_back(slot);
    if (!slot->cv.wait_for(lock, kParkFor, [&] { return slot->routine != nullptr; })) {
      std::erase(pool.parked, slot);  // timed out: create() did not take it (it would under this lock)
      break;
    }
  }
  delete slot;
  return nullptr;
}

}  // namespace

int create(pthread_t* tid, const pthread_attr_t* attr, void* (*routine)(void*), void* arg, CreateFn real) {
  if (attr != nullptr) return real(tid, attr, routine, arg);
  {
    std::lock_guard lock(pool.mu);
    if (!pool.parked.empty()) {
      Slot* slot = pool.parked.back();
      pool.parked.pop_back();
      slot->routine = routine;
      slot->arg = arg;
      *tid = slot->self;
      ++pool.counters.reused;
      slot->cv.notify_one();
      return 0;
    }
  }
  auto* slot = new Slot;
  slot->routine = routine;
  slot->arg = arg;
  pthread_attr_t detached;
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
  int rc = real(tid, &detached, pool_thread, slot);
  pthread_attr_destroy(&detached);
  if (rc != 0) {
    delete slot;
    return rc;
  }
  std::lock_guard lock(pool.mu);
  ++pool.counters.started;
  return 0;
}

int detach(pthread_t t, DetachFn real) {
  if (in_pool && pthread_equal(t, pthread_self())) return 0;  // already detached
  return real(t);
}

bool in_libmilter_thread() { return in_pool; }

Stats stats() {
  std::lock_guard lock(pool.mu);
  Stats s = pool.counters;
  s.parked = pool.parked.size();
  return s;
}

}  // namespace cllavio::milter::thread_reuse
