#!/usr/bin/env python3
"""Pack a directory as a container image in `docker save` format, without an engine or a registry (stdlib only).

    mkimage.py [--base BASE.tar] [--env K=V ...] [--workdir DIR] [--user UID:GID] ROOTDIR NAME:TAG OUT.tar \\
               [-- ENTRYPOINT ARG ...]

The directory becomes one layer; with --base, it is added on top of that image's layers and config (a two-layer
image, as a Dockerfile's FROM + COPY would make). `ctr images import` and `docker load` both read the result.
Layers are streamed through temporary files, so a large root file system does not have to fit in memory.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile

ENV_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("ref", help="NAME:TAG")
    ap.add_argument("out")
    ap.add_argument("entrypoint", nargs="*", help="the image's ENTRYPOINT, exec form (after `--` if it has options)")
    ap.add_argument("--base", help="docker-archive tarball to build on (its layers and config are kept)")
    ap.add_argument("--env", action="append", default=[], help="K=V, added to the image's environment")
    ap.add_argument("--workdir")
    ap.add_argument("--user", help="USER, e.g. 10001:10001")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(a.out))) as tmp:
        layers: list[tuple[str, str]] = []          # (diff id hex, path of layer.tar)
        config: dict = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                        "config": {"Env": [ENV_PATH], "Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": []},
                        "history": []}
        if a.base:
            with tarfile.open(a.base) as base:
                (manifest,) = json.load(base.extractfile("manifest.json"))
                config = json.load(base.extractfile(manifest["Config"]))
                for name in manifest["Layers"]:
                    path = os.path.join(tmp, f"base-{len(layers)}.tar")
                    with base.extractfile(name) as src, open(path, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    layers.append((_sha256_file(path), path))
        path = os.path.join(tmp, "layer.tar")
        with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name in sorted(os.listdir(a.root)):
                t.add(os.path.join(a.root, name), arcname=name, recursive=True)
        layers.append((_sha256_file(path), path))

        cfg = config["config"]
        env = [e for e in cfg.get("Env") or [ENV_PATH]]
        for kv in a.env:
            key = kv.split("=", 1)[0]
            env = [e for e in env if e.split("=", 1)[0] != key] + [kv]
        cfg["Env"] = env
        if a.entrypoint:
            cfg["Entrypoint"], cfg["Cmd"] = a.entrypoint, None
        if a.user:
            cfg["User"] = a.user
        if a.workdir:
            cfg["WorkingDir"] = a.workdir
        config["rootfs"]["diff_ids"] = [f"sha256:{d}" for d, _ in layers]
        config["history"] = config.get("history", []) + [{"created_by": f"mkimage.py {os.path.basename(a.root)}"}]
        cb = json.dumps(config).encode()
        cid = hashlib.sha256(cb).hexdigest()
        manifest = [{"Config": cid + ".json", "RepoTags": [a.ref], "Layers": [f"{d}/layer.tar" for d, _ in layers]}]
        with tarfile.open(a.out + ".tmp", "w") as t:
            def add(name: str, data: bytes) -> None:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mtime = len(data), 0
                t.addfile(ti, io.BytesIO(data))
            add(cid + ".json", cb)
            for digest, layer in layers:
                t.add(layer, arcname=f"{digest}/layer.tar")
            add("manifest.json", json.dumps(manifest).encode())
        os.replace(a.out + ".tmp", a.out)
    print(a.out, a.ref, len(layers), "layer(s)")


if __name__ == "__main__":
    main()
