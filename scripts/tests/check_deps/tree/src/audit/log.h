#pragma once

#include "base/status.h"
#include "store/store.h"
