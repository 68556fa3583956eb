// The libmilter shell: the only code that includes libmilter.
//
// Registers the callbacks, negotiates the protocol, and translates each callback
// into a Connection call (milter/session.hpp), mapping the Verdict back to
// SMFIS_* and smfi_setreply. No exception crosses a C callback: every callback
// catches and hands the failure to Connection::internal_error ([milter] on_error).
//
// Shutdown: this libmilter (Debian's, built with the workers pool) abandons open
// sessions as soon as smfi_stop() is called, so the daemon never calls it.
// Instead, once Runtime::stopping is set, new connections are refused at
// negotiation (Postfix then applies milter_default_action, as if the milter
// were gone) and the daemon exits once the messages in flight are answered.
#pragma once

#include <string>

#include "milter/runtime.hpp"

namespace cllavio::milter {

// Registers with libmilter and opens the listening socket from the current
// config (a stale unix socket is removed). Returns "" or what went wrong.
std::string open_milter(Runtime& runtime);

// Runs libmilter's accept loop; returns only when libmilter fails.
int run_milter();

}  // namespace cllavio::milter
