"""Folder and file outputs (ext, suffix, quality, recursive) and photo metadata (EXIF orientation, ICC, XMP)."""
from __future__ import annotations

import io
import json
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps, PngImagePlugin
from typer.testing import CliRunner

import restore
from restore.cli import app
from restore.errors import RestoreError
from restore.io import PhotoMetadata, list_images, read_image, write_image
from restore.io.metadata import read_metadata
from restore.io.orientation import exif_orientation, reset_orientation

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="restore-test"/></rdf:RDF></x:xmpmeta>')
ORIENTATION, MAKE = 0x0112, 0x010F
SIGMA = 10 / 255


@pytest.fixture()
def rgb(astronaut) -> np.ndarray:
    """80 x 96 RGB uint8 (not square, so that a quarter turn shows)."""
    return (astronaut[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def exif(orientation: int) -> Image.Exif:
    block = Image.Exif()
    block[ORIENTATION] = orientation
    block[MAKE] = "TestCam"
    return block


def photo(path, pixels: np.ndarray, orientation: int = 1, icc: bytes | None = ICC, xmp: bytes | None = XMP):
    """Save ``pixels`` with Pillow carrying EXIF (``orientation``, a Make), an ICC profile and XMP."""
    extra = {"icc_profile": icc} if icc else {}
    if path.suffix == ".png" and xmp:
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        extra["pnginfo"] = info
    elif xmp:
        extra["xmp"] = xmp
    Image.fromarray(pixels).save(path, exif=exif(orientation), **extra)
    return path


def blocks(path) -> dict:
    """What Pillow reads back from a file: its EXIF orientation and Make, ICC profile, XMP."""
    with Image.open(path) as im:
        info, tags = dict(im.info), im.getexif()
        xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
        return {"orientation": tags.get(ORIENTATION), "make": tags.get(MAKE), "icc": info.get("icc_profile"),
                "xmp": xmp.encode() if isinstance(xmp, str) else xmp, "size": im.size}


# ---------------------------------------------------------------- EXIF orientation on read


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_pillow_does(tmp_path, rgb, orientation):
    path = photo(tmp_path / "o.png", rgb, orientation)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    image = read_image(path)
    got = (image.pixels[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(got, expected)
    assert image.metadata.orientation == 1  # the pixels are upright now: what is written with them says so


def test_orientation_6_turns_a_jpeg_and_its_alpha_upright(tmp_path, rgb):
    image = read_image(photo(tmp_path / "o.jpg", rgb, 6))
    assert image.pixels.shape[-2:] == (96, 80)
    rgba = np.concatenate([rgb, np.arange(80, dtype=np.uint8)[:, None].repeat(96, 1)[:, :, None]], axis=2)
    turned = read_image(photo(tmp_path / "a.png", rgba, 6, icc=None, xmp=None))
    assert turned.alpha.shape == (96, 80)
    # Alpha = the stored row's index; turned a quarter clockwise, the first stored row is the last column.
    assert np.array_equal(turned.alpha[0], np.arange(80)[::-1]) and (turned.alpha[:, -1] == 0).all()


def test_reset_orientation_keeps_every_other_byte():
    raw = exif(8).tobytes()[6:]  # without the "Exif\0\0" header
    reset = reset_orientation(raw)
    assert exif_orientation(raw) == 8 and exif_orientation(reset) == 1
    assert len(reset) == len(raw) and sum(a != b for a, b in zip(raw, reset)) == 1
    assert exif_orientation(b"not exif") == 1 and reset_orientation(b"") == b""


def test_metadata_of_a_photo_over_pillows_bomb_limit_is_still_read():
    # A 200 Mpx photo is within restore's pixel limit (268 Mpx) but over Pillow's open() limit (179 Mpx).
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 16320, 12240, 8, 2, 0, 0, 0))
    png = b"\x89PNG\r\n\x1a\n" + header + chunk(b"iCCP", b"p\x00\x00" + zlib.compress(ICC)) + chunk(b"IEND", b"")
    assert read_metadata(".png", png).icc == ICC
    assert not read_metadata(".png", b"not a png") and not read_metadata(".bmp", png)


# ---------------------------------------------------------------- metadata copied to outputs


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_exif_icc_and_xmp_are_copied_with_orientation_reset(tmp_path, rgb, ext):
    source = read_image(photo(tmp_path / f"in{ext}", rgb, 6))
    out = write_image(tmp_path / f"out{ext}", source.pixels, metadata=source.metadata)
    got = blocks(out)
    assert got["icc"] == ICC and got["xmp"] == XMP
    assert got["orientation"] == 1 and got["make"] == "TestCam"
    assert got["size"] == (80, 96)  # stored upright: viewers show what the reader saw


def test_tiff_outputs_keep_icc_and_xmp_and_16_bit(tmp_path, rgb):
    source = read_image(photo(tmp_path / "in.jpg", rgb, 1))
    out = write_image(tmp_path / "out.tif", source.pixels, bit_depth=16, metadata=source.metadata)
    back = read_image(out)
    assert back.bit_depth == 16 and back.metadata.icc == ICC and back.metadata.xmp == XMP


def test_a_tiff_photos_icc_profile_goes_to_a_png_output(tmp_path, rgb):
    tiff = write_image(tmp_path / "in.tif", torch.from_numpy(rgb).permute(2, 0, 1)[None] / 255.0,
                       metadata=PhotoMetadata(icc=ICC))
    report = restore.run(tiff, task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path / "out", ext="png",
                         progress=False)
    assert report.done == 1 and blocks(tmp_path / "out" / "in.png")["icc"] == ICC


def test_an_icc_profile_of_other_channels_is_not_written(tmp_path):
    rgb_profile = PhotoMetadata(icc=ICC, xmp=XMP)  # an sRGB profile on a gray result (as a CMYK photo's, once RGB)
    for ext in (".png", ".jpg", ".tif"):
        gray = read_image(write_image(tmp_path / f"g{ext}", torch.rand(1, 1, 16, 16), metadata=rgb_profile))
        assert gray.metadata == PhotoMetadata(xmp=XMP)
    webp = read_image(write_image(tmp_path / "g.webp", torch.rand(1, 1, 16, 16), metadata=rgb_profile))
    assert webp.metadata.icc == ICC  # WebP stores gray as RGB: the profile fits


def test_16_bit_png_keeps_its_depth_and_carries_the_metadata(tmp_path, rgb):
    metadata = PhotoMetadata(exif=exif(1).tobytes()[6:], icc=ICC, xmp=XMP)
    out = write_image(tmp_path / "deep.png", torch.rand(1, 3, 20, 30), bit_depth=16, metadata=metadata)
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    back = read_image(out)
    assert back.bit_depth == 16 and back.metadata == metadata


def test_strip_metadata_and_copy_through_restore_run(tmp_path, rgb):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "p.jpg", rgb, 6)
    kept = restore.run(folder, task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path / "kept", progress=False)
    stripped = restore.run(folder, task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path / "bare",
                           strip_metadata=True, progress=False)
    assert kept.done == stripped.done == 1
    got = blocks(tmp_path / "kept" / "p.jpg")
    assert (got["orientation"], got["icc"], got["xmp"], got["size"]) == (1, ICC, XMP, (80, 96))
    bare = blocks(tmp_path / "bare" / "p.jpg")
    assert bare["orientation"] is None and bare["icc"] is None and bare["xmp"] is None and bare["size"] == (80, 96)


def test_a_webp_too_large_to_encode_fails_cleanly_and_leaves_no_file(tmp_path):
    with pytest.raises(RestoreError, match="WebP"):
        write_image(tmp_path / "wide.webp", torch.rand(1, 3, 1, 16384))
    assert list(tmp_path.iterdir()) == []


def test_webp_round_trip_and_a_truncated_webp_is_refused(tmp_path, rgb):
    out = write_image(tmp_path / "a.webp", torch.from_numpy(rgb).permute(2, 0, 1)[None] / 255.0, quality=100)
    back = read_image(out)
    assert back.pixels.shape == (1, 3, 80, 96) and back.bit_depth == 8
    (tmp_path / "cut.webp").write_bytes(out.read_bytes()[:-40])
    with pytest.raises(RestoreError, match="truncated WebP"):
        read_image(tmp_path / "cut.webp")


@pytest.mark.parametrize("ext", [".jpg", ".webp"])
def test_quality_sets_the_lossy_encoders_quality(tmp_path, rgb, ext):
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None] / 255.0
    low, high = (write_image(tmp_path / f"q{q}{ext}", pixels, quality=q) for q in (20, 95))
    assert low.stat().st_size < high.stat().st_size
    with pytest.raises(RestoreError, match="quality must be an integer from 1 to 100"):
        write_image(tmp_path / f"bad{ext}", pixels, quality=0)


# ---------------------------------------------------------------- names, formats, sub-folders


@pytest.fixture()
def photos(tmp_path, rgb):
    """photos/top.jpg (orientation 6, ICC, XMP), photos/2024/trip/b.png, and a hidden folder that is skipped."""
    root = tmp_path / "photos"
    (root / "2024" / "trip").mkdir(parents=True)
    (root / ".cache").mkdir()
    photo(root / "top.jpg", rgb, 6)
    cv2.imwrite(str(root / "2024" / "trip" / "b.png"), rgb[:40, :48])
    cv2.imwrite(str(root / ".cache" / "c.png"), rgb[:8, :8])
    return root


def test_list_images_recursive_skips_hidden_folders(photos):
    assert [p.relative_to(photos).as_posix() for p in list_images(photos, recursive=True)] == ["2024/trip/b.png",
                                                                                               "top.jpg"]
    assert [p.name for p in list_images(photos)] == ["top.jpg"]


def test_run_names_outputs_keeps_the_tree_and_resumes_by_the_new_names(tmp_path, photos):
    out = tmp_path / "out"
    args = dict(task="denoise", model="nlm", sigma=SIGMA, out_dir=out, ext="webp", suffix="_clean", recursive=True,
                progress=False)
    report = restore.run(photos, **args)
    assert report.done == 2
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.webp")) == ["2024/trip/b_clean.webp",
                                                                                  "top_clean.webp"]
    logged = [json.loads(line)["output"] for line in (out / "restore-log.jsonl").read_text().splitlines()]
    assert sorted(logged) == sorted(str(p) for p in out.rglob("*.webp"))
    assert restore.run(photos, **args).skipped == 2  # the existing outputs are found under their new names
    assert not (out / ".cache").exists()


def test_quality_and_strip_metadata_are_settings_a_rerun_must_match(tmp_path, photos):
    args = dict(task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path / "out", progress=False)
    assert restore.run(photos / "top.jpg", quality=80, **args).done == 1
    with pytest.raises(RestoreError, match="made with other settings"):
        restore.run(photos / "top.jpg", quality=70, **args)
    with pytest.raises(RestoreError, match="made with other settings"):
        restore.run(photos / "top.jpg", quality=80, strip_metadata=True, **args)
    assert restore.run(photos / "top.jpg", quality=80, **args).skipped == 1


def test_arrays_are_named_by_ext_and_suffix(tmp_path, rgb):
    report = restore.run([rgb], task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path, ext="jpg", suffix="_d",
                         progress=False)
    assert report.done == 1 and (tmp_path / "image_00000_d.jpg").is_file()


def test_without_recursive_a_folder_of_sub_folders_says_how(tmp_path, photos):
    (photos / "top.jpg").unlink()
    with pytest.raises(RestoreError, match="recursive=True"):
        restore.run(photos, task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path / "out", progress=False)


@pytest.mark.parametrize("bad, message", [
    ({"quality": 0}, "quality must be an integer from 1 to 100"),
    ({"quality": 101}, "quality must be an integer from 1 to 100"),
    ({"quality": 9.5}, "quality must be an integer"),
    ({"ext": "gif"}, "ext must be one of keep, png, tif, jpg, webp"),
    ({"ext": ".jpg"}, "ext must be one of"),
    ({"suffix": "a/b"}, "must not hold '/'"),
    ({"suffix": "a\\b"}, "must not hold '/'"),
    ({"recursive": "yes"}, "recursive must be True or False"),
    ({"strip_metadata": 1}, "strip_metadata must be True or False"),
])
def test_bad_output_settings_are_refused_before_any_work(tmp_path, photos, bad, message, monkeypatch):
    monkeypatch.setattr("restore.batch.load", lambda *a, **k: pytest.fail("a restorer was loaded"))
    with pytest.raises(RestoreError, match=message):
        restore.run(photos, task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path / "out", progress=False, **bad)
    assert not (tmp_path / "out").exists()


def test_output_file_takes_no_ext_or_suffix(tmp_path, photos):
    with pytest.raises(RestoreError, match="output= names the file itself"):
        restore.run(photos / "top.jpg", task="denoise", model="nlm", sigma=SIGMA, output=tmp_path / "o.png",
                    suffix="_x", progress=False)


def test_two_inputs_renamed_onto_one_output_are_refused(tmp_path, rgb):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "a.tif"):
        write_image(folder / name, torch.from_numpy(rgb).permute(2, 0, 1)[None] / 255.0)
    with pytest.raises(RestoreError, match="would both be written to .*a.jpg; keep each input's format"):
        restore.run(folder, task="denoise", model="nlm", sigma=SIGMA, out_dir=tmp_path / "out", ext="jpg",
                    progress=False)


# ---------------------------------------------------------------- the command line


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_recursive_jpg_suffix_quality_keeps_tree_names_orientation_and_icc(tmp_path, photos):
    out = tmp_path / "out"
    result = invoke("denoise", photos, "-o", out, "--recursive", "--ext", "jpg", "--suffix", "_clean",
                    "--quality", "90", "--model", "nlm", "--sigma", "10")
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == ["2024/trip/b_clean.jpg",
                                                                                 "top_clean.jpg"]
    top = blocks(out / "top_clean.jpg")
    assert top["size"] == (80, 96) and top["orientation"] == 1 and top["icc"] == ICC and top["xmp"] == XMP
    with Image.open(out / "top_clean.jpg") as im:
        quantisation = im.quantization[0]
    with Image.open(io.BytesIO(_jpeg(90))) as im:
        assert quantisation == im.quantization[0]  # written at quality 90


def _jpeg(quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes()


def test_cli_single_file_suffix_ext_and_strip_metadata(tmp_path, photos):
    result = invoke("denoise", photos / "top.jpg", "--suffix", "_x", "--ext", "png", "--strip-metadata",
                    "--model", "nlm", "--sigma", "10")
    assert result.exit_code == 0, result.output
    got = blocks(photos / "top_x.png")
    assert got["size"] == (80, 96) and got["icc"] is None and got["orientation"] is None


@pytest.mark.parametrize("args, message", [
    (["--quality", "0"], "error: --quality must be an integer from 1 to 100"),
    (["--ext", "gif"], "error: --ext must be one of keep, png, tif, jpg, webp"),
    (["--suffix", "a/b"], "error: --suffix 'a/b' must not hold"),
    (["-o", "OUT/o.png", "--ext", "jpg"], "names the output file: --ext and --suffix rename outputs in a folder"),
])
def test_cli_bad_output_settings_are_one_line_errors(tmp_path, photos, args, message):
    args = [a.replace("OUT", str(tmp_path)) for a in args]
    result = invoke("denoise", photos / "top.jpg", "--model", "nlm", "--sigma", "10", *args)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in photos.iterdir()) == [".cache", "2024", "top.jpg"]
