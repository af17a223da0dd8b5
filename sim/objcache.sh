#!/bin/sh
# sim/objcache.sh, installed by sim/runner.py. Usage: objcache.sh COMPILER ARGS... (Verilator's OBJCACHE hook).
cache="$AVATARGAN_VL_RUNTIME_CACHE"
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
case "$out" in
  verilated*.o)
    [ -n "$cache" ] || exec "$@"
    d="${out%.o}.d"
    if [ -f "$cache/$out" ] && [ -f "$cache/$d" ]; then
      cp "$cache/$out" "$out" && cp "$cache/$d" "$d" && exit 0
    fi
    "$@" || exit $?
    mkdir -p "$cache" && cp "$out" "$cache/$out.$$" && cp "$d" "$cache/$d.$$" \
      && mv "$cache/$d.$$" "$cache/$d" && mv "$cache/$out.$$" "$cache/$out"
    exit 0;;
esac
exec "$@"
