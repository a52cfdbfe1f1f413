#include "os/fd.h"
#include "reconcile/loop.h"
#include "store/sqlite/sqlite_store.h"
