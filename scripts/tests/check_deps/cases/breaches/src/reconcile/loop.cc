#include "reconcile/loop.h"

#include <sys/mount.h>

#include "base/status.h"
#include "os/fd.h"
#include "store/sqlite/sqlite_store.h"
