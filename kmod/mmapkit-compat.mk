# SPDX-License-Identifier: GPL-2.0
#
# Build-time probes of the target kernel's API, conftest style: each probe
# in probes/ is compiled with -Werror and the kernel's own flags (those
# Kbuild compiles a module with, scripts/Makefile.lib c_flags) against the
# headers being built for, and its define is added to ccflags-y when it
# compiles. mmapkit-compat.h turns the defines into one set of helpers, so
# that no .c file tests a kernel version. Included by kmod/Kbuild and by the
# fixtures' Kbuild files (tools/fixtures.ts links this file, the header and
# probes/ next to test/fixtures/kmod/common in the build tree).
#
#   MMAPKIT_HAVE_VM_FLAGS_SET  vm_flags_set/clear/mod() exist; vm_flags is
#                              read-only (probes/vm-flags-set.c)

mmapkit-probe-dir := $(dir $(lastword $(MAKEFILE_LIST)))probes

# $(call mmapkit-probe,probe.c,define): -Ddefine if probe.c compiles.
mmapkit-probe = $(call try-run,$(CC) -Werror $(NOSTDINC_FLAGS) $(LINUXINCLUDE) \
	-include $(srctree)/include/linux/compiler_types.h \
	$(KBUILD_CPPFLAGS) $(KBUILD_CFLAGS) $(KBUILD_CFLAGS_MODULE) \
	-c -o "$$TMP" $(mmapkit-probe-dir)/$(1),-D$(2))

ccflags-y += $(call mmapkit-probe,vm-flags-set.c,MMAPKIT_HAVE_VM_FLAGS_SET)
