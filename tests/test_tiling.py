"""Tiling: stitched tile centres equal one untiled call when the halo covers the receptive field."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.nets.lidia import Lidia, LidiaConfig
from restore.restorers.lidia import HALO
from restore.tiling import partition_into_blocks, tile_starts, tiled_apply


def test_tile_starts_cover_the_axis():
    assert tile_starts(10, 20) == [0]
    assert tile_starts(100, 32) == [0, 32, 64, 68]


def test_local_filter_is_unchanged_by_tiling():
    x = torch.rand(2, 3, 70, 53)
    blur = lambda t: F.avg_pool2d(F.pad(t, [2] * 4, mode="replicate"), 5, stride=1)  # noqa: E731
    assert torch.allclose(tiled_apply(blur, x, tile=16, halo=2), blur(x), atol=1e-6)


def test_lidia_tiles_match_untiled_call():
    torch.manual_seed(0)
    net = Lidia(LidiaConfig.gray()).eval().fold_batchnorm()
    y = torch.rand(1, 1, 76, 70) * 2 - 1
    with torch.inference_mode():
        whole = net(y)
        tiled = tiled_apply(net, y, tile=38, halo=HALO)
    assert torch.allclose(whole, tiled, atol=1e-4)


def test_bad_tile_is_refused():
    with pytest.raises(RestoreError):
        tiled_apply(lambda t: t, torch.rand(1, 1, 8, 8), tile=0, halo=1)


def test_blocks_partition_the_image_and_read_their_halo():
    blocks = partition_into_blocks(37, 45, side=16, halo=3)
    covered = torch.zeros(37, 45, dtype=torch.int64)
    for b in blocks:
        r0, r1, c0, c1 = b.core
        covered[r0:r1, c0:c1] += 1
        q0, q1, p0, p1 = b.read
        assert (q0, q1, p0, p1) == (max(0, r0 - 3), min(37, r1 + 3), max(0, c0 - 3), min(45, c1 + 3))
    assert covered.eq(1).all() and len(blocks) == 3 * 3
    with pytest.raises(RestoreError):
        partition_into_blocks(10, 10, side=0, halo=1)
