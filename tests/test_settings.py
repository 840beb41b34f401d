"""Settings: round trip, a damaged file never stops the app, and the data folder honours LESIONLENS_HOME."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import app.settings as settings_module
from app.settings import Settings, app_data_dir, load_settings, save_settings
from segmentation.imageio import OutputWriteError

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the real home: the data folder and HOME both point into tmp_path."""
    home = tmp_path / "lesionlens-home"
    monkeypatch.setenv("LESIONLENS_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return home


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "settings.json"  # save creates the folders
    settings = Settings(
        overlay_colour="#ff8000",
        overlay_opacity=0.6,
        show_fill=False,
        show_boundary=False,
        threshold=0.3,
        last_folder="/data/clinic/2025-01 Ünïcode",
        brush_screen_radius=40,
        device="cpu",
        weights="/models/lesion.safetensors",
    )
    save_settings(settings, path)
    assert load_settings(path) == settings
    assert json.loads(path.read_text(encoding="utf-8"))["overlay_colour"] == "#ff8000"
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp file left behind


def test_default_path_is_in_lesionlens_home(_isolated_home: Path) -> None:
    assert app_data_dir() == _isolated_home
    save_settings(Settings(brush_screen_radius=7))
    assert (_isolated_home / "settings.json").is_file()
    assert load_settings().brush_screen_radius == 7


@pytest.mark.parametrize(
    "content", [b"", b"{ not json", b"\xff\xfe\x00", b"[1, 2]", b"null", b'"text"', b"[" * 100_000]
)
def test_corrupt_file_gives_defaults(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    assert load_settings(path) == Settings()


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "absent.json") == Settings()
    assert load_settings(tmp_path) == Settings()  # a folder where the file should be


def test_partly_invalid_file_keeps_the_valid_keys(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    data = {
        "overlay_colour": "green",  # not #rrggbb
        "overlay_opacity": 2.0,  # out of range
        "show_fill": "yes",  # wrong type
        "show_boundary": False,  # valid
        "threshold": 1,  # an int is a valid number
        "mm_per_pixel": 0.05,  # no longer a preference (a calibration belongs to one image): ignored
        "last_folder": "/data",  # valid
        "brush_screen_radius": 12.5,  # not an int
        "device": None,  # wrong type
        "weights": "w.safetensors",  # valid
        "window_geometry": "from a newer version",  # unknown: ignored
    }
    path.write_text(json.dumps(data))
    loaded = load_settings(path)
    defaults = Settings()
    assert loaded == dataclasses.replace(
        defaults, show_boundary=False, threshold=1.0, last_folder="/data", weights="w.safetensors"
    )
    assert isinstance(loaded.threshold, float)


def test_save_failure_is_an_output_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OutputWriteError):
        save_settings(Settings(), blocker / "settings.json")


def test_platform_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LESIONLENS_HOME")
    home = tmp_path / "home"
    monkeypatch.setattr(settings_module.Path, "home", classmethod(lambda cls: home))
    monkeypatch.setattr(settings_module.sys, "platform", "linux")
    assert app_data_dir() == home / ".local" / "share" / "lesionlens"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert app_data_dir() == tmp_path / "xdg" / "lesionlens"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # invalid per the XDG spec: ignored
    assert app_data_dir() == home / ".local" / "share" / "lesionlens"
    monkeypatch.setattr(settings_module.sys, "platform", "darwin")
    assert app_data_dir() == home / "Library" / "Application Support" / "LesionLens"
    monkeypatch.setattr(settings_module.sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert app_data_dir() == tmp_path / "Roaming" / "LesionLens"
    monkeypatch.setenv("LESIONLENS_HOME", str(tmp_path / "portable"))
    assert app_data_dir() == tmp_path / "portable"


def test_settings_module_does_not_import_qt() -> None:
    probe = "import sys, app.settings; assert not any(m.startswith('PySide6') for m in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_export_folders_and_backend_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"export_folders": {"/images": "/exports"}, "backend": "torch"}))
    assert load_settings(path).export_folders == {"/images": "/exports"}
    assert load_settings(path).backend == "torch"
    path.write_text(json.dumps({"export_folders": {"/images": 3}, "backend": "gpu", "brush_radius": 300}))
    loaded = load_settings(path)  # an old image-pixel "brush_radius" is not taken as screen pixels
    assert loaded.export_folders == {} and loaded.backend == "auto" and loaded.brush_screen_radius == 12
    assert Settings().export_folders is not Settings().export_folders  # no shared mutable default
    path.write_text(json.dumps({"exported_into": ["/a", "/b"]}))
    assert load_settings(path).exported_into == ["/a", "/b"]
    path.write_text(json.dumps({"exported_into": ["/a", 3]}))
    assert load_settings(path).exported_into == []
