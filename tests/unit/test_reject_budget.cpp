#define BOOST_TEST_MODULE reject_budget
#include <boost/test/unit_test.hpp>

#include "milter/reject_budget.hpp"

using cllavio::milter::RejectBudget;

BOOST_AUTO_TEST_CASE(starts_full_then_refills_at_the_rate) {
  RejectBudget b;
  std::int64_t t = 1'000'000'000;
  for (int i = 0; i < 10; ++i) BOOST_TEST(b.take(10, t));
  BOOST_TEST(!b.take(10, t));             // burst of 10 used up
  BOOST_TEST(!b.take(10, t + 5'000'000));  // 5 s: 0.83 of a token
  BOOST_TEST(b.take(10, t + 6'000'000));   // 6 s: one token (10 per minute)
  BOOST_TEST(!b.take(10, t + 6'000'001));
}

BOOST_AUTO_TEST_CASE(long_idle_refills_only_up_to_the_rate) {
  RejectBudget b;
  std::int64_t t = 1'000'000'000;
  BOOST_TEST(b.take(3, t));
  t += 3600LL * 1'000'000;  // an hour later
  int taken = 0;
  while (b.take(3, t)) ++taken;
  BOOST_TEST(taken == 3);
}

BOOST_AUTO_TEST_CASE(zero_means_never_and_clock_going_back_is_safe) {
  RejectBudget b;
  BOOST_TEST(!b.take(0, 1'000'000));
  BOOST_TEST(b.take(2, 5'000'000));
  BOOST_TEST(b.take(2, 1'000'000));  // clock went back: start full again, no negative refill
}
