"""``gtaudit overlay IMAGE MASK -o OUT``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from gtaudit_local.cli import main
from PIL import Image


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    image = tmp_path / "photo.png"
    Image.new("RGB", (3, 2), (100, 100, 100)).save(image)
    mask = Image.new("P", (3, 2), 0)
    mask.putpalette([255, 255, 255, 44, 160, 44])
    mask.putpixel((1, 0), 1)
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    return image, mask_path


def test_writes_the_overlay_in_the_format_of_the_extension(tmp_path: Path) -> None:
    image, mask = write_inputs(tmp_path)
    out = tmp_path / "overlay.png"
    assert main(["overlay", str(image), str(mask), "-o", str(out), "--opacity", "1"]) == 0
    pixels = np.asarray(Image.open(out))
    assert pixels[0, 1].tolist() == [44, 160, 44]
    assert (pixels[1] == 100).all() and pixels[0, 0].tolist() == [100, 100, 100]


def test_default_is_a_half_opacity_jpeg_on_stdout(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    image, mask = write_inputs(tmp_path)
    assert main(["overlay", str(image), str(mask), "-o", "-"]) == 0
    im = Image.open(io.BytesIO(capsysbinary.readouterr().out))
    assert (im.format, im.size) == ("JPEG", (3, 2))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-o", "out.gif"], "OUT must end in"),
        (["-o", "out.jpg", "--opacity", "2"], "opacity"),
        (["-o", "out.jpg", "--max-pixels", "4"], "limit is 4"),
    ],
)
def test_unusable_input_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    image, mask = write_inputs(tmp_path)
    extra = [str(tmp_path / e) if e.startswith("out.") else e for e in extra]
    assert main(["overlay", str(image), str(mask), *extra]) == 2
    assert message in capsys.readouterr().err


def test_size_mismatch_names_both_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, mask = write_inputs(tmp_path)
    Image.new("RGB", (8, 5)).save(image)
    assert main(["overlay", str(image), str(mask), "-o", str(tmp_path / "o.jpg")]) == 2
    err = capsys.readouterr().err
    assert "3x2" in err and "8x5" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overlay", str(tmp_path / "nope.jpg"), str(tmp_path / "m.png"), "-o", str(tmp_path / "o.jpg")]) == 2
    assert "nope.jpg" in capsys.readouterr().err


def test_legend_from_a_colour_map_file(tmp_path: Path) -> None:
    image, mask = write_inputs(tmp_path)
    cmap = tmp_path / "cmap.json"
    colour_map = {
        "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"},
        "1": {"class-name": "人", "hex-color": "#2ca02c"},
    }
    cmap.write_text(json.dumps(colour_map, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "o.png"
    assert main(["overlay", str(image), str(mask), "-o", str(out), "--legend", str(cmap)]) == 0
    im = Image.open(out)
    assert im.width == 3 and im.height > 2  # a legend strip below the 3x2 overlay


def test_bad_legend_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, mask = write_inputs(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["overlay", str(image), str(mask), "-o", str(tmp_path / "o.png"), "--legend", str(bad)]) == 2
    assert "gtaudit overlay:" in capsys.readouterr().err
