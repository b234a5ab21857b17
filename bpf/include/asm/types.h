/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/* aird shim: the BPF target has no arch directory; use the generic layout. */
#include <asm-generic/types.h>
