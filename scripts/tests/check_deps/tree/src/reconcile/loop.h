#pragma once

#include "store/store.h"
