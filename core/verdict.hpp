// What the milter answers to one step of a transaction. The libmilter shell maps it to
// SMFIS_* and smfi_setreply; everything else only produces it.
#pragma once

#include "policy/decision.hpp"

namespace cllavio::core {

enum class Step { cont, accept, reject, tempfail };

struct Verdict {
  Step step = Step::cont;
  policy::Reply reply;  // for reject/tempfail; empty rcode: the MTA's default reply
};

inline Verdict temporary_failure() {
  return Verdict{Step::tempfail, {"451", "4.3.0", "Temporary failure in the mail filter, please try again later"}};
}

}  // namespace cllavio::core
