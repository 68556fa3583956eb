// The libmilter shell: the only code that includes libmilter.
//
// Registers the callbacks, negotiates the protocol, and translates each callback
// into a Connection call (milter/session.hpp), mapping the Verdict back to
// SMFIS_* and smfi_setreply. No exception crosses a C callback: every callback
// catches and hands the failure to Connection::internal_error ([milter] on_error).
#pragma once

#include <string>

#include "milter/runtime.hpp"

namespace cllavio::milter {

// Registers with libmilter and opens the listening socket from the current
// config (a stale unix socket is removed). Returns "" or what went wrong.
std::string open_milter(Runtime& runtime);

// Runs libmilter's accept loop until stop_milter(); returns libmilter's status.
int run_milter();

// Stop accepting connections (async-signal context not required; call from a thread).
void stop_milter();

}  // namespace cllavio::milter
