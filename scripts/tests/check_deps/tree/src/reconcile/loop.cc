#include "reconcile/loop.h"

#include "base/status.h"
#include "store/store.h"
