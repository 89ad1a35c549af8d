#!/bin/sh
# The installed libskeptic as a user sees it: `cmake --install` into a temporary
# prefix, examples/classify.c compiled there with cc and pkg-config (shared, and
# static with `pkg-config --static`) and with CMake's find_package(skeptic), each
# run on a small model; their figures must be the command line's on the same file,
# data and box.
#
#   tests/test_install.sh SOURCE_DIR BUILD_DIR [EXTRA_CFLAGS]
#
# EXTRA_CFLAGS: what a program linking this build's library must be compiled
# with (the sanitizer flags when the library was built with them).
set -eu
SRC=$1
BUILD=$2
EXTRA=${3:-}
SKEPTIC=$BUILD/skeptic
TMP=$(mktemp -d "${TMPDIR:-/tmp}/skeptic-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The example and the program must use the same OpenBLAS kernels for their
# figures to agree bit for bit: keep a preset OPENBLAS_CORETYPE in both.
export SKEPTIC_KEEP_CORETYPE=1

PREFIX=$TMP/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" || { cat "$TMP/install.log"; fail "cmake --install"; }
for f in include/skeptic/skeptic.h include/skeptic/attack.h bin/skeptic; do
  [ -f "$PREFIX/$f" ] || fail "$f was not installed"
done
PC=$(find "$PREFIX" -name skeptic.pc)
[ -n "$PC" ] || fail "skeptic.pc was not installed"
LIBDIR=$(dirname "$(dirname "$PC")")
for f in libskeptic.a libskeptic.so cmake/skeptic/skepticConfig.cmake cmake/skeptic/skepticConfigVersion.cmake; do
  [ -e "$LIBDIR/$f" ] || fail "$f is not in $LIBDIR"
done

export PKG_CONFIG_PATH="$(dirname "$PC")"
version=$(pkg-config --modversion skeptic)
cli_version=$("$SKEPTIC" --version 2>&1 | grep -o '[0-9][0-9.]*' | head -n 1)
[ "$version" = "$cli_version" ] || fail "skeptic.pc says version $version, the program $cli_version"
[ "$(pkg-config --variable=prefix skeptic)" = "$PREFIX" ] || fail "skeptic.pc's prefix is not $PREFIX"

CFLAGS="-std=c11 -Wall -Wextra -Wpedantic -Werror $EXTRA"
# Shared: -lskeptic alone must do (the library carries its own dependencies).
# shellcheck disable=SC2046,SC2086
cc $CFLAGS "$SRC/examples/classify.c" -o "$TMP/classify_shared" $(pkg-config --cflags --libs skeptic) \
  -Wl,-rpath,"$LIBDIR" || fail "compiling against the shared library"
# Static: libskeptic.a and the Requires.private / Libs.private of skeptic.pc.
static_libs=$(pkg-config --static --libs skeptic | sed 's/-lskeptic\( \|$\)/-l:libskeptic.a\1/')
# shellcheck disable=SC2046,SC2086
cc $CFLAGS "$SRC/examples/classify.c" -o "$TMP/classify_static" $(pkg-config --cflags skeptic) $static_libs \
  || fail "compiling against the static library with pkg-config --static"
if ldd "$TMP/classify_static" | grep -q libskeptic; then fail "classify_static loads libskeptic.so"; fi
ldd "$TMP/classify_shared" | grep -q "$LIBDIR/libskeptic.so" || fail "classify_shared does not load the installed libskeptic.so"

# A small model, and the command line's figures on it.
MODEL=$TMP/moons.safetensors
"$SKEPTIC" train --data moons --arch mlp:2-16-16-2:relu --epochs 4 --lr 0.01 --optimizer adam --seed 3 \
  --threads 1 --out "$MODEL" --quiet >/dev/null
BOX="--clip-min -2 --clip-max 3"
json_num() { grep -o "\"$1\":[-0-9.e+]*" | head -n 1 | cut -d: -f2; }
acc=$("$SKEPTIC" eval --model "$MODEL" --data moons --threads 1 --json | json_num accuracy)
# shellcheck disable=SC2086
att=$("$SKEPTIC" attack --model "$MODEL" --data moons --attack pgd --eps 0.25 --steps 20 $BOX --threads 1 --json)
clean=$(echo "$att" | json_num clean_accuracy)
robust=$(echo "$att" | json_num robust_accuracy)
[ -n "$acc" ] && [ -n "$clean" ] && [ -n "$robust" ] || fail "no figures from the command line: $att"
expect=$(printf 'rows 1000\naccuracy %.6f\nrobust %.6f' "$acc" "$robust")
[ "$(printf '%.6f' "$clean")" = "$(printf '%.6f' "$acc")" ] || fail "eval says $acc, attack's clean accuracy $clean"
# A figure that cannot tell a broken attack from a working one proves nothing.
awk -v a="$acc" -v r="$robust" 'BEGIN { exit !(a > 0.7 && r < a) }' \
  || fail "the model is not a useful test case: accuracy $acc, robust $robust"

check() {
  name=$1
  shift
  out=$(OMP_NUM_THREADS=1 "$@" "$MODEL" moons 0.25 -2 3) || fail "$name exited with $?"
  [ "$out" = "$expect" ] || fail "$name printed '$out', the command line '$expect'"
  echo "$name: $(echo "$out" | tr '\n' ' ')"
}
check "pkg-config shared" "$TMP/classify_shared"
check "pkg-config static" "$TMP/classify_static"

# A user's mistake is a message and exit status 1.
if "$TMP/classify_shared" "$TMP/missing.safetensors" moons 2>"$TMP/err"; then fail "a missing file was accepted"; fi
grep -q "^error: .*missing.safetensors" "$TMP/err" || fail "on a missing file: $(cat "$TMP/err")"

# CMake: find_package(skeptic) and skeptic::skeptic, then skeptic::skeptic_static.
for kind in OFF ON; do
  cmake -S "$SRC/examples" -B "$TMP/cmake-$kind" -DCMAKE_PREFIX_PATH="$PREFIX" -DSKEPTIC_STATIC=$kind \
    -DCMAKE_C_FLAGS="$EXTRA" >"$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log"; fail "find_package(skeptic)"; }
  cmake --build "$TMP/cmake-$kind" >"$TMP/cmake.log" 2>&1 || { cat "$TMP/cmake.log"; fail "building with CMake"; }
  check "find_package static=$kind" "$TMP/cmake-$kind/classify"
done
if ldd "$TMP/cmake-ON/classify" | grep -q libskeptic; then fail "skeptic::skeptic_static loads libskeptic.so"; fi
echo "install: ok (skeptic $version)"
