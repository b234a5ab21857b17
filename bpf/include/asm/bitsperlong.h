/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/* aird shim: BPF is a 64-bit target. */
#ifndef __ASM_BITSPERLONG_H
#define __ASM_BITSPERLONG_H
#define __BITS_PER_LONG 64
#include <asm-generic/bitsperlong.h>
#endif
