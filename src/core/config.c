#include "autoconfig.h"

#include "core/config.h"
