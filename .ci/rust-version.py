#!/usr/bin/env python3
"""Fails when a crate in Cargo.lock declares a newer rust-version than the workspace's.

The workspace's rust-version (Cargo.toml, [workspace.package]) is the rustc of
the nixpkgs revision in flake.lock, which builds vmm and the guests (flake.nix
refuses to evaluate with an older one). Cargo here is newer and would lock a
crate that needs it without a word; nixpkgs' cargo then fails the build.
Every package of the lock counts, whatever its platform or dependency kind.
Run from the repository's root: python3 .ci/rust-version.py
"""

import json
import subprocess
import sys
import tomllib


def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    with open("Cargo.toml", "rb") as f:
        wanted = tomllib.load(f)["workspace"]["package"]["rust-version"]
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--quiet"],
            check=True,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        ).stdout
    )
    members = set(meta["workspace_members"])
    errors = []
    newest = None
    undeclared = 0
    for p in meta["packages"]:
        rv = p.get("rust_version")
        name = f"{p['name']} {p['version']}"
        if p["id"] in members:
            # The members inherit the workspace's (rust-version.workspace = true).
            if rv is None or version(rv) != version(wanted):
                errors.append(f"workspace member {name}: rust-version {rv}, not the workspace's {wanted}")
            continue
        if rv is None:
            undeclared += 1
            continue
        if version(rv) > version(wanted):
            errors.append(f"{name} needs rustc {rv}")
        if newest is None or version(rv) > version(newest[1]):
            newest = (name, rv)
    for e in errors:
        print(f"ci: rust-version: {e}", file=sys.stderr)
    if errors:
        print(
            f"ci: rust-version: the flake's rustc is {wanted} (Cargo.toml); "
            "`cargo update -p CRATE --precise VERSION` to an older release, or raise "
            "rust-version with the nixpkgs pin (flake.lock)",
            file=sys.stderr,
        )
        return 1
    crates = len(meta["packages"]) - len(members)
    print(
        f"ci: rust-version {wanted}: {crates} locked crates need no newer rustc "
        f"(newest: {newest[0]}, {newest[1]}; {undeclared} declare none)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
