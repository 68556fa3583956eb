// Filled in by the Redis ledger work (quota/redis_ledger.hpp).
#include "quota/redis_ledger.hpp"
