// Internal to the Redis ledger: the Lua text of each operation (quota/redis_scripts.cpp
// documents the keys, arguments and the reply).
#pragma once

#include <string>

namespace cllavio::quota::detail {

enum class Op { reserve, release, charge, uncharge, replay, usage, reset };
constexpr int kOps = 7;

const std::string& script_text(Op op);  // the whole script (shared helpers + the operation)
std::string sha1_hex(const std::string& text);  // what EVALSHA names a script by

}  // namespace cllavio::quota::detail
