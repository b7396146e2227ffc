#!/usr/bin/env bash
# Installs a newer Mesa lavapipe (from Debian trixie-backports) into a private folder, for
# testing the cooperative-matrix kernels on a CPU: lavapipe has VK_KHR_cooperative_matrix
# since Mesa 25.1 (8x8x8 fragments on 256-bit CPUs), while bookworm's lavapipe (22.3, the
# software adapter of the other tests) and backports' (25.0) have none.
#
#   bash scripts/lavapipe-coop.sh        prints the ICD file to use as VK_DRIVER_FILES
#
# Nothing on the system changes: apt runs with its own source list and state under the
# folder, and the packages are unpacked there, not installed. The trixie build needs glibc
# 2.38 for a few symbols (the C23 strtol family, fmod) that bookworm's 2.36 lacks; the script
# clears those symbols' version requirements (patchelf), marks the 2.37+ version needs weak,
# and links a small shim (the C23 functions call their C99 forms: they differ only in
# accepting "0b" prefixes). This is a test tool only: the library never depends on it.
# Exits non-zero, with the reason, where any step fails (scripts/test.sh then says the
# cooperative-matrix tests were skipped).
set -euo pipefail
dir="${WEBATTN_LVP_COOP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/webattn/lavapipe-coop}"
icd="$dir/lvp_icd.json"
if [ -f "$icd" ]; then
  echo "$icd"
  exit 0
fi
for tool in apt-get dpkg-deb patchelf objdump python3 cc; do
  if ! command -v "$tool" >/dev/null; then
    if [ "$tool" = patchelf ] && [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null
    else
      echo "lavapipe-coop: $tool is missing" >&2
      exit 1
    fi
  fi
done
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"/{apt/lists/partial,apt/cache/archives/partial,debs,root}
cd "$dir.tmp"
cat > apt/sources.list <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
EOF
apt_opts=(-o "Dir::Etc::sourcelist=$PWD/apt/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$PWD/apt/lists" -o "Dir::Cache=$PWD/apt/cache"
  -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
apt-get "${apt_opts[@]}" update -qq
# The newest mesa-vulkan-drivers of the two suites, and the LLVM it was built against.
ver=$(apt-cache "${apt_opts[@]}" madison mesa-vulkan-drivers | awk '{print $3}' | sort -V | tail -1)
(cd debs && apt-get "${apt_opts[@]}" download -qq "mesa-vulkan-drivers=$ver")
llvm=$(dpkg-deb -f debs/mesa-vulkan-drivers_*.deb Depends | tr ',' '\n' | grep -o 'libllvm[0-9]*' | head -1)
(cd debs && apt-get "${apt_opts[@]}" download -qq "$llvm/trixie" libdrm2/trixie \
  libdrm-amdgpu1/trixie libdisplay-info2/trixie)
for f in debs/*.deb; do dpkg-deb -x "$f" root; done
lib="$PWD/root/usr/lib/x86_64-linux-gnu"
# Only lavapipe is needed of the package's drivers and layers.
find "$lib" -maxdepth 1 \( -name 'libvulkan_*' ! -name 'libvulkan_lvp.so' -o -name 'libVkLayer*' \) -delete
lvp="$lib/libvulkan_lvp.so"
llvm_so=$(ls "$lib"/libLLVM.so.* "$lib"/libLLVM-*.so 2>/dev/null | grep -v '\.so$' | head -1 || true)
[ -n "$llvm_so" ] || llvm_so=$(ls "$lib"/libLLVM*.so* | head -1)
cat > shim.c <<'EOF'
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
long __isoc23_strtol(const char *s, char **e, int b) { return strtol(s, e, b); }
unsigned long __isoc23_strtoul(const char *s, char **e, int b) { return strtoul(s, e, b); }
long long __isoc23_strtoll(const char *s, char **e, int b) { return strtoll(s, e, b); }
unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
int __isoc23_sscanf(const char *s, const char *f, ...) {
  va_list a; va_start(a, f); int r = vsscanf(s, f, a); va_end(a); return r;
}
int __isoc23_scanf(const char *f, ...) {
  va_list a; va_start(a, f); int r = vscanf(f, a); va_end(a); return r;
}
EOF
cc -shared -fPIC -O2 -o "$lib/libwebattn_isoc23.so" shim.c
glibc=$(ldd --version | awk 'NR==1{print $NF}')
patched=()
for so in "$lib"/*.so*; do
  [ -f "$so" ] && [ ! -L "$so" ] || continue
  # Symbols bound to a glibc version newer than this machine's: bind them unversioned.
  syms=$(objdump -T "$so" | awk -v g="$glibc" '
      /\*UND\*/ && match($0, /GLIBC_[0-9.]+/) {
        v = substr($0, RSTART + 6, RLENGTH - 6); split(v, a, "."); split(g, b, ".");
        if (a[1] > b[1] || (a[1] == b[1] && a[2] > b[2])) print $NF }')
  [ -n "$syms" ] || continue
  for sym in $syms; do
    patchelf --clear-symbol-version "$sym" "$so"
  done
  if grep -q '^__isoc23_' <<<"$syms"; then
    patchelf --add-needed libwebattn_isoc23.so "$so"
  fi
  patched+=("$so")
done
for so in "$lvp" "$llvm_so"; do
  patchelf --set-rpath "$dir/root/usr/lib/x86_64-linux-gnu" "$so"
done
python3 - "$glibc" "${patched[@]}" <<'EOF'
# Marks the version needs (.gnu.version_r) on glibc versions newer than this machine's weak,
# so that the dynamic loader does not refuse the library for them.
import struct, sys
have = tuple(int(x) for x in sys.argv[1].split("."))
for path in sys.argv[2:]:
    d = bytearray(open(path, "rb").read())
    shoff, = struct.unpack_from("<Q", d, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", d, 0x3a)
    secs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
    for s in secs:
        if s[1] != 0x6ffffffe:  # SHT_GNU_verneed
            continue
        strtab = secs[s[6]][4]
        off = s[4]
        while True:
            _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", d, off)
            a = off + aux
            for _ in range(cnt):
                _, flags, _, name, anext = struct.unpack_from("<IHHII", d, a)
                nm = d[strtab + name:d.index(0, strtab + name)].decode()
                if nm.startswith("GLIBC_2."):
                    v = tuple(int(x) for x in nm[6:].split("."))
                    if v > have:
                        struct.pack_into("<H", d, a + 4, flags | 2)  # VER_FLG_WEAK
                a += anext
                if anext == 0:
                    break
            if nxt == 0:
                break
            off += nxt
    open(path, "wb").write(d)
EOF
printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.4.0"}}\n' \
  "$dir/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" > lvp_icd.json
rm -rf apt debs shim.c
cd /
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "lavapipe-coop: Mesa $ver in $dir" >&2
echo "$icd"
