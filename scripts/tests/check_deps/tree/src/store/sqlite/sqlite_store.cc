#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>
