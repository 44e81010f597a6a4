#!/bin/sh
# The compiler launcher of mmapkit's Kbuild runs (tools/builder/build.ts
# kbuildCommand), in the place Debian's headers keep for ccache
# (.kernelvariables: CC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-N):
#
#   kbuild-cc.sh COMPILER ARG...
#
# runs COMPILER with the arguments, except that the answers to Kbuild's own
# compiler probes are kept in $MMAPKIT_KBUILD_PROBES and given again.
#
# Why: every make of a module reads the headers' top and arch Makefiles
# again, and they ask the compiler some 35 questions one after another
# (scripts/Makefile.compiler try-run: cc-option, cc-option-yn,
# cc-disable-warning, as-option; each a gcc, cc1 and as on /dev/null, about
# 25 ms): 0.5 s of the 1.2 s a module build with nothing to compile takes,
# on the path of every `make run` (docs/benchmarks.md). Kbuild dropped its
# own cache of shell results in 4.18 ("kbuild: remove kbuild cache",
# e08d6de4e532) because an updated compiler left stale answers behind (its
# search path, from -print-file-name); this keeps only probes, and the
# compiler's identity is part of their key.
#
# A probe is recognised by the form try-run gives it: it ends in
# "-c -x c /dev/null -o DIR/.tmp_PID/tmp" (or assembler-with-cpp). Its
# answer is its exit status alone: the input is empty, the output a
# temporary file try-run deletes, and what it prints is discarded. So the
# status is kept under a hash of what decides it: the arguments without the
# output's name (it carries make's pid), and the compiler's and assembler's
# path, size, inode and change time (an upgrade of their package changes
# these; cc1 comes from the same source package as the driver). Anything
# else, and any probe when MMAPKIT_KBUILD_PROBES is unset, runs as given.

compiler=$1
shift

all=" $* "
case $all in
*" -c -x c /dev/null -o "*.tmp_*/tmp" " | *" -c -x assembler-with-cpp /dev/null -o "*.tmp_*/tmp" ") ;;
*) exec "$compiler" "$@" ;;
esac
[ -n "$MMAPKIT_KBUILD_PROBES" ] || exec "$compiler" "$@"

tools=$(command -v "$compiler") && assembler=$(command -v as) &&
	identity=$(stat -L -c '%n %s %i %Z' "$tools" "$assembler") || exec "$compiler" "$@"
key=$(printf '%s\n' "$identity" "${all% -o *}" | md5sum) || exec "$compiler" "$@"
answer=$MMAPKIT_KBUILD_PROBES/${key%% *}

if [ -f "$answer" ] && read -r status <"$answer"; then
	exit "$status"
fi

"$compiler" "$@"
status=$?
# gcc answers no with 1; anything else (a signal, an internal error) is
# not an answer about the option and is not kept. Written under a
# temporary name and renamed: builds side by side read a whole answer or
# none. A cache that cannot be written only costs time.
[ "$status" -le 1 ] && mkdir -p "$MMAPKIT_KBUILD_PROBES" 2>/dev/null &&
	printf '%s\n' "$status" >"$answer.$$" 2>/dev/null &&
	mv -f "$answer.$$" "$answer" 2>/dev/null
exit "$status"
