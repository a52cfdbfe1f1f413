#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include "store/sqlite/sqlite_store.h"
#include "store/testing/fake_store.h"
