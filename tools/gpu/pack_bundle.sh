#!/usr/bin/env bash
# pack_bundle.sh WORK NAME OUTDIR: WORK/NAME (an unpacked site folder) as an xz archive in parts of at most PART_MB
# MiB (default 48: a part plus the working tree stays under the 64 MiB a device call carries), with SHA256 and
# unpack.sh beside them (`bash OUTDIR/unpack.sh DEST` -> DEST/NAME). Used by build_vllm_bundle.sh and
# build_airflow_bundle.sh.
set -euo pipefail
work=${1:?usage: pack_bundle.sh WORK NAME OUTDIR} name=${2:?} out=${3:?}
du -sm "$work/$name" | sed 's/^/unpacked MiB: /'
tar -C "$work" -cf - "$name" | xz -9 -T2 > "$work/$name.tar.xz"
mkdir -p "$out"
rm -f "$out"/part_* "$out"/SHA256
split -b "${PART_MB:-48}m" "$work/$name.tar.xz" "$out/part_"
(cd "$work" && sha256sum "$name.tar.xz") > "$out/SHA256"
sed "s/@NAME@/$name/g" > "$out/unpack.sh" <<'UNPACK'
#!/usr/bin/env bash
# unpack.sh DEST: join the parts beside this script, check the archive's SHA256, unpack DEST/@NAME@.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: unpack.sh DEST}
mkdir -p "$dest"
cat "$here"/part_* > "$dest/@NAME@.tar.xz"
(cd "$dest" && sha256sum -c "$here/SHA256")
tar -xJf "$dest/@NAME@.tar.xz" -C "$dest"
rm -f "$dest/@NAME@.tar.xz"
UNPACK
ls -l "$out"
