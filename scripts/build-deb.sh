#!/usr/bin/env bash
# Builds the Debian package of bgpd and bgpctl with dpkg-deb (docs/operations.md).
#
#   scripts/build-deb.sh [--bin-dir DIR] [--out DIR] [--fast]
#
# --bin-dir: where the built bgpd and bgpctl are (default target/release, built here with
# `cargo build --release` when missing). --out: where the .deb goes (default target/debian).
# --fast: gzip -1 instead of xz (tests package the large debug binaries).
#
# The layout is the one `[package.metadata.deb]` in bgpd/Cargo.toml describes for
# cargo-deb; this script needs only dpkg-deb (in every Debian base system), where cargo-deb
# would first have to be built from source on every fresh CI machine.
#
# Contents: /usr/bin/{bgpd,bgpctl}; /lib/systemd/system/{bgpd,bgpd-calico}.service;
# man pages and bash/zsh/fish completions generated from the binaries' own command line
# (their hidden `generate-docs`); the example configurations and calico-bgpd.env under
# /usr/share/doc/bgpd/examples. No service is enabled or started by the package.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="$root/target/release"
out_dir="$root/target/debian"
compress=(-Zxz)
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) bin_dir="$2"; shift 2 ;;
        --out) out_dir="$2"; shift 2 ;;
        --fast) compress=(-Zgzip -z1); shift ;;
        *) echo "usage: $0 [--bin-dir DIR] [--out DIR] [--fast]" >&2; exit 2 ;;
    esac
done

if [ ! -x "$bin_dir/bgpd" ] || [ ! -x "$bin_dir/bgpctl" ]; then
    if [ "$bin_dir" != "$root/target/release" ]; then
        echo "$bin_dir has no bgpd and bgpctl" >&2
        exit 1
    fi
    (cd "$root" && cargo build --release -p bgpd -p bgpctl)
fi

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT

install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/usr/share/man/man8" "$stage/usr/share/bash-completion/completions" \
    "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d" \
    "$stage/usr/share/doc/bgpd/examples"
install -m 0755 "$bin_dir/bgpd" "$bin_dir/bgpctl" "$stage/usr/bin/"
install -m 0644 "$root/deploy/systemd/bgpd.service" "$stage/lib/systemd/system/"
sed 's#/usr/local/bin/#/usr/bin/#g' "$root/deploy/systemd/bgpd-calico.service" \
    > "$stage/lib/systemd/system/bgpd-calico.service"
chmod 0644 "$stage/lib/systemd/system/bgpd-calico.service"

docs="$stage/generated"
for b in bgpd bgpctl; do
    "$stage/usr/bin/$b" generate-docs --out "$docs"
    gzip -9n -c "$docs/man/$b.8" > "$stage/usr/share/man/man8/$b.8.gz"
    install -m 0644 "$docs/completions/$b.bash" "$stage/usr/share/bash-completion/completions/$b"
    install -m 0644 "$docs/completions/_$b" "$stage/usr/share/zsh/vendor-completions/"
    install -m 0644 "$docs/completions/$b.fish" "$stage/usr/share/fish/vendor_completions.d/"
done
rm -rf "$docs"
install -m 0644 "$root"/examples/*.toml "$root/deploy/systemd/calico-bgpd.env" \
    "$stage/usr/share/doc/bgpd/examples/"
install -m 0644 "$root/README.md" "$stage/usr/share/doc/bgpd/"

size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: bgpd
Version: $version
Architecture: $arch
Maintainer: bgpd developers <bgpd@localhost>
Installed-Size: $size
Depends: libc6
Section: net
Priority: optional
Description: BGP speaker and route reflector for Calico nodes
 bgpd speaks BGP-4 (RFC 4271) with graceful restart, ADD-PATH and route
 reflection, installs routes in the Linux kernel, and can replace BIRD on
 Calico nodes. bgpctl inspects and controls it.
CONTROL

mkdir -p "$out_dir"
deb="$out_dir/bgpd_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compress[@]}" --build "$stage" "$deb" >/dev/null
echo "$deb"
