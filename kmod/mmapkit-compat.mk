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

mmapkit-compat-dir := $(dir $(lastword $(MAKEFILE_LIST)))
mmapkit-probe-dir := $(mmapkit-compat-dir)probes

# The probe's compile command: the flags a module is compiled with.
mmapkit-probe-cmd = $(CC) -Werror $(NOSTDINC_FLAGS) $(LINUXINCLUDE) \
	-include $(srctree)/include/linux/compiler_types.h \
	$(KBUILD_CPPFLAGS) $(KBUILD_CFLAGS) $(KBUILD_CFLAGS_MODULE) \
	-c -o "$$TMP" $(mmapkit-probe-dir)/$(1)

# Kbuild reads this file in every module directory it builds (the fixtures'
# dozen included), and a probe compiles kernel headers: about 0.65 s on this
# project's machine, a third of a build with nothing to compile. So each
# answer is kept next to this file, in the build tree of one kernel release
# (whose headers do not change), named by a hash of the probe's command and
# source: other flags (W=1) or an edited probe ask again. Measured: the
# fixtures' build 13.0 s, then 8.4 s; the module's 3.6 s, then 3.0 s.
mmapkit-probe-cache = $(mmapkit-compat-dir).mmapkit-probe-$(basename $(1))-$(shell \
	printf '%s' '$(subst ','\'',$(call mmapkit-probe-cmd,$(1)))' | \
	cat - $(mmapkit-probe-dir)/$(1) | md5sum | cut -c1-16)

# Written to a temporary name and renamed: builds side by side read a whole
# answer or none.
mmapkit-probe-keep = $(shell printf '%s' '$(2)' >$(1).$$$$ && mv -f $(1).$$$$ $(1))$(2)

# $(call mmapkit-probe,probe.c,define): -Ddefine if probe.c compiles.
mmapkit-probe = $(eval mmapkit-probe-at := $(call mmapkit-probe-cache,$(1)))$(if \
	$(wildcard $(mmapkit-probe-at)),$(file <$(mmapkit-probe-at)),$(call \
	mmapkit-probe-keep,$(mmapkit-probe-at),$(call try-run,$(call \
	mmapkit-probe-cmd,$(1)),-D$(2))))

ccflags-y += $(call mmapkit-probe,vm-flags-set.c,MMAPKIT_HAVE_VM_FLAGS_SET)
