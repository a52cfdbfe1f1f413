#pragma once

#include <sys/epoll.h>

#include "os/fd.h"
