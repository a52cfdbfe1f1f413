#pragma once

#include <vector>

#include "base/status.h"
