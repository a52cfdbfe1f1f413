#pragma once

#include "base/status.h"
#include "reconcile/loop.h"
