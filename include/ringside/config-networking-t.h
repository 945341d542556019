/* Types of the networking.istio.io resources (issue 3). */
#ifndef RINGSIDE_CONFIG_NETWORKING_T_H
#define RINGSIDE_CONFIG_NETWORKING_T_H

#include "ringside/config-t.h"

#endif
