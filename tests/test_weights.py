"""Shipped weights: manifest, sha256 verification, clear errors naming the file."""
from __future__ import annotations

import json
import shutil

import pytest

import restore
from restore.weights import WEIGHTS_DIR, load_model_files, read_manifest, sha256


def test_every_shipped_file_matches_its_manifest_hash():
    files = read_manifest()["files"]
    assert files, "manifest lists no files"
    for name, entry in files.items():
        assert sha256(WEIGHTS_DIR / name) == entry["sha256"], name


def test_weights_stay_within_budget():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir())
    lidia = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("lidia-*"))
    assert total < 48e6
    assert lidia < 1e6  # DESIGN.md: LIDIA < 1 MB for all its models


@pytest.fixture()
def weights_copy(tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, folder)
    return folder


def test_corrupt_file_is_named(weights_copy):
    name = next(n for n in read_manifest(weights_copy)["files"] if n.endswith(".safetensors"))
    data = bytearray((weights_copy / name).read_bytes())
    data[-1] ^= 0xFF
    (weights_copy / name).write_bytes(bytes(data))
    with pytest.raises(restore.RestoreError, match=f"corrupt.*{name}"):
        load_model_files(name.removesuffix(".safetensors"), weights_copy)


def test_missing_file_is_named(weights_copy):
    name = next(n for n in read_manifest(weights_copy)["files"] if n.endswith(".safetensors"))
    (weights_copy / name).unlink()
    with pytest.raises(restore.RestoreError, match=f"missing.*{name}"):
        load_model_files(name.removesuffix(".safetensors"), weights_copy)


def test_unlisted_file_is_refused(weights_copy):
    doc = json.loads((weights_copy / "manifest.json").read_text())
    doc["files"] = {}
    (weights_copy / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(restore.RestoreError, match="not listed"):
        load_model_files("lidia-gray-s25", weights_copy)
