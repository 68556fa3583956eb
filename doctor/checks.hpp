// cllavioctl doctor: the checks. check() judges gathered Facts and returns findings in a
// stable order (each Postfix instance, then the milter's own side); it does no I/O, so every
// finding is unit-tested with hand-written Facts (tests/unit/test_doctor_checks.cpp).
// Every check that applies and passes emits one `ok` finding, so the output reads as a
// checklist; a check that does not apply (an inet socket has no chroot problem, no
// [delivery], no API configured, facts not gathered) emits nothing.
#pragma once

#include <vector>

#include "doctor/facts.hpp"
#include "doctor/finding.hpp"

namespace cllavio::doctor {

std::vector<Finding> check(const Facts& facts);

// The parts of check(), exposed for the tests.
std::vector<Finding> check_instance(const PostfixInstance& instance, const Facts& facts);
std::vector<Finding> check_milter_side(const MilterSide& milter);

}  // namespace cllavio::doctor
