"""The CLI's answer to input it cannot use: one ``gtaudit: error: ...`` line naming the file, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from gtaudit_local.cli import main
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
NOT_UTF8 = b'{"taskInput": "\xff\xfe"}'


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI; check it failed with exit code 2 and one error line; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gtaudit: error: ")
    return lines[0]


def test_invoke_with_a_missing_event_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = error_line(capsys, ["invoke", "labeling_pre", "--event", str(tmp_path / "nope.json")])
    assert "--event not found" in line and "nope.json" in line


def test_invoke_with_an_event_that_is_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = tmp_path / "event.json"
    event.write_text("{not json", encoding="utf-8")
    line = error_line(capsys, ["invoke", "labeling_pre", "--event", str(event)])
    assert "--event is not JSON" in line and "event.json" in line and "line 1" in line


def test_invoke_with_an_event_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(NOT_UTF8)
    line = error_line(capsys, ["invoke", "labeling_pre", "--event", str(event)])
    assert "--event is not UTF-8 text" in line and "event.json" in line


def test_invoke_with_a_parameter_override_that_is_not_key_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "event.json"
    event.write_text("{}", encoding="utf-8")
    line = error_line(capsys, ["invoke", "labeling_pre", "--event", str(event), "--parameter-overrides", "LabelSet"])
    assert "KEY=VALUE" in line and "LabelSet" in line


def test_preview_with_an_input_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = tmp_path / "input.json"
    task.write_bytes(NOT_UTF8)
    line = error_line(capsys, ["preview", str(ROOT / "ui" / "audit.liquid.html"), "--input", str(task)])
    assert "--input is not UTF-8 text" in line and "input.json" in line


def test_preview_with_an_input_that_is_not_a_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = tmp_path / "input.json"
    task.write_text("[1, 2]", encoding="utf-8")
    line = error_line(capsys, ["preview", str(ROOT / "ui" / "audit.liquid.html"), "--input", str(task)])
    assert "input.json" in line and "JSON object" in line


def test_preview_with_a_missing_s3_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template, task = str(ROOT / "ui" / "audit.liquid.html"), str(ROOT / "ui" / "examples" / "audit-input.json")
    line = error_line(capsys, ["preview", template, "--input", task, "--s3-root", str(tmp_path / "none")])
    assert "--s3-root not found" in line


@pytest.mark.parametrize(
    "command",
    [
        ["demo", "--out", "{tmp}/out"],
        ["start", "--bucket", "b", "--table", "t"],
    ],
)
def test_images_that_do_not_exist_are_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    argv = [a.format(tmp=tmp_path) for a in command] + ["--images", str(tmp_path / "photos")]
    line = error_line(capsys, argv)
    assert line == f"gtaudit: error: --images not found: {tmp_path / 'photos'}"
    assert not (tmp_path / "out").exists()  # refused before anything started


def test_images_that_are_a_file_are_not_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    line = error_line(capsys, ["demo", "--out", str(tmp_path / "out"), "--images", str(photo)])
    assert "--images is not a folder" in line


def test_overlay_with_a_jpeg_mask_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, mask = tmp_path / "photo.png", tmp_path / "mask.jpg"
    Image.new("RGB", (3, 2)).save(image)
    Image.new("RGB", (3, 2)).save(mask)
    line = error_line(capsys, ["overlay", str(image), str(mask), "-o", str(tmp_path / "o.png")])
    assert line == f"gtaudit: error: not a PNG mask: {mask} (a JPEG image)"
    assert "BytesIO" not in line


def test_overlay_with_a_mask_that_is_no_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.new("RGB", (3, 2)).save(image)
    mask.write_text("not an image")
    line = error_line(capsys, ["overlay", str(image), str(mask), "-o", str(tmp_path / "o.png")])
    assert line == f"gtaudit: error: not a PNG mask: {mask} (not an image)"
