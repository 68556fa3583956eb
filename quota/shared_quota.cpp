// Filled in by the shared quota work (quota/shared_quota.hpp).
#include "quota/shared_quota.hpp"
