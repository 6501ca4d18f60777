#ifndef PLATFORM_CHIREDIS_SHIM_H
#define PLATFORM_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
