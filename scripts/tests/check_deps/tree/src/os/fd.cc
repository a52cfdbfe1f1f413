#include "os/fd.h"

#include <sys/socket.h>
#include <unistd.h>
