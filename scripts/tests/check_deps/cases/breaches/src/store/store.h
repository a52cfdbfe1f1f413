#pragma once

#include <openssl/ssl.h>
#include <sqlite3.h>
#include <vector>
#include <zlib.h>

#include "base/status.h"
#include "store/testing/fake_store.h"
#include "types.h"
