#define BOOST_TEST_MODULE runtime
#include <boost/test/unit_test.hpp>

#include <pthread.h>

#include <cstddef>
#include <thread>

#include "milter/runtime.hpp"

using namespace cllavio::milter;

namespace {

// The stack size of a thread started the way libmilter starts its workers: pthread_create
// with no attributes.
std::size_t new_thread_stack_size() {
  std::size_t size = 0;
  pthread_t t;
  auto body = [](void* out) -> void* {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      pthread_attr_getstacksize(&attr, static_cast<std::size_t*>(out));
      pthread_attr_destroy(&attr);
    }
    return nullptr;
  };
  BOOST_REQUIRE_EQUAL(pthread_create(&t, nullptr, body, &size), 0);
  pthread_join(t, nullptr);
  return size;
}

std::size_t default_stack_size() {
  pthread_attr_t attr;
  std::size_t size = 0;
  BOOST_REQUIRE_EQUAL(pthread_getattr_default_np(&attr), 0);
  pthread_attr_getstacksize(&attr, &size);
  pthread_attr_destroy(&attr);
  return size;
}

}  // namespace

// No thread may start before: glibc would hand its (larger) cached stack to the next thread,
// as the daemon's first call makes sure.
BOOST_AUTO_TEST_CASE(threads_without_attributes_get_two_mib_stacks) {
  std::size_t default_before = default_stack_size();
  BOOST_REQUIRE(tune_thread_stacks());
  std::size_t got = new_thread_stack_size();
  if (kAsanBuild) {
    BOOST_CHECK_EQUAL(default_stack_size(), default_before);  // sanitizer builds keep the default
  } else {
    BOOST_CHECK_EQUAL(got, std::size_t{2} << 20);
  }
  // std::thread (the libraries' own threads) takes the same default.
  std::size_t from_std = 0;
  std::thread([&] {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      pthread_attr_getstacksize(&attr, &from_std);
      pthread_attr_destroy(&attr);
    }
  }).join();
  BOOST_CHECK_EQUAL(from_std, got);
}
