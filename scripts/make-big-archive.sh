#!/usr/bin/env bash
# Writes a checkpoint archive whose pid 1 has SIZE_MIB more memory, for benchmarks.
#
# It is the shipped podman-counter-none.tar with one more pagemap run for pid 1 at a low address and that many
# MiB of pages (half random, half zero: compressible roughly as real memory is) in front of pages-1.img, so argv
# and environment (on the stack, at the end of pages-1.img) sit behind all of it.
# Usage: scripts/make-big-archive.sh SIZE_MIB OUTPUT.tar
set -euo pipefail
size_mib=$1
output=$2
sample=${SAMPLE:-$(dirname "$0")/../../shared/testdata/archives/podman-counter-none.tar}
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
tar -xf "$sample" -C "$tree"
python3 - "$tree/checkpoint" "$size_mib" <<'PY'
import os, struct, sys
checkpoint, size_mib = sys.argv[1], int(sys.argv[2])

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)

path = os.path.join(checkpoint, "pagemap-1.img")
data = open(path, "rb").read()
magic, body = data[:8], data[8:]                   # common magic + PAGEMAP magic
head_len = struct.unpack("<I", body[:4])[0]
head, rest = body[:4 + head_len], body[4 + head_len:]
# pagemap_entry { vaddr=1: 0x10000000, compat_nr_pages=2 (required), nr_pages=5: pages, flags=4: PE_PRESENT }.
# CRIU writes compat_nr_pages too (the pre-4.0 field, a uint32); checkpointctl refuses an entry without it.
pages = size_mib * 256
entry = (b"\x08" + varint(0x10000000) + b"\x10" + varint(pages & 0xFFFFFFFF) + b"\x28" + varint(pages)
         + b"\x20" + varint(4))
open(path, "wb").write(magic + head + struct.pack("<I", len(entry)) + entry + rest)

old = open(os.path.join(checkpoint, "pages-1.img"), "rb").read()
with open(os.path.join(checkpoint, "pages-1.img"), "wb") as f:
    for _ in range(size_mib):
        f.write(os.urandom(1 << 19) + bytes(1 << 19))
    f.write(old)
PY
(cd "$tree" && tar --format=gnu -cf "$output" .)
