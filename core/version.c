/* version.c: the library version. */
#include "visreg.h"

const char *vr_version(void) { return "0.1.0"; }
