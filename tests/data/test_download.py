"""PetImages download: safe extraction, dropping unusable files, and failing fast when offline."""

from __future__ import annotations

import hashlib
import socket
import stat
import time
import zipfile

import pytest

from pipeline.data.download import (
    download_petimages,
    extract_petimages,
    safe_extract_zip,
)
from pipeline.errors import PipelineError


@pytest.fixture
def petimages_zip(tmp_path, write_image):
    """A miniature kagglecatsanddogs zip: 3 good photos per class, one corrupt, one empty."""
    photos = tmp_path / "photos"
    zip_path = tmp_path / "upload" / "kagglecatsanddogs_5340.zip"
    zip_path.parent.mkdir()
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("CDLA-Permissive-2.0.pdf", b"%PDF licence")
        for label in ("Cat", "Dog"):
            archive.writestr(f"PetImages/{label}/", b"")
            for i in range(3):
                path = write_image(photos / label / f"{i}.jpg")
                archive.write(path, f"PetImages/{label}/{i}.jpg")
            archive.writestr(f"PetImages/{label}/Thumbs.db", b"\0" * 64)
        good = (photos / "Cat" / "0.jpg").read_bytes()
        archive.writestr("PetImages/Cat/666.jpg", good[: len(good) // 3])  # corrupt
        archive.writestr("PetImages/Dog/11702.jpg", b"")  # zero bytes
    return zip_path


def zip_with(tmp_path, name, data=b"x", symlink=False):
    zip_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("PetImages/Cat/0.jpg", b"fine")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, data)
    return zip_path


def test_extraction_drops_unusable_files_and_reports_them(tmp_path, petimages_zip):
    data_root = tmp_path / "data"

    result = extract_petimages(petimages_zip, data_root)

    assert result.path == data_root / "PetImages"
    assert sorted(p.name for p in (result.path / "Cat").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert result.counts == {"Cat": 3, "Dog": 3}
    removed = dict(result.removed)
    assert set(removed) == {"Cat/666.jpg", "Dog/11702.jpg", "Cat/Thumbs.db", "Dog/Thumbs.db"}
    assert removed["Dog/11702.jpg"] == "empty file (0 bytes)"
    assert "truncated or corrupt" in removed["Cat/666.jpg"]
    assert sorted(p.name for p in data_root.iterdir()) == ["PetImages"]  # no staging left behind
    assert "removed 4 unusable files" in result.summary()


def test_existing_extraction_needs_force(tmp_path, petimages_zip):
    data_root = tmp_path / "data"
    extract_petimages(petimages_zip, data_root)
    with pytest.raises(PipelineError, match="set `force` to extract again"):
        extract_petimages(petimages_zip, data_root)
    assert extract_petimages(petimages_zip, data_root, force=True).counts == {"Cat": 3, "Dog": 3}


@pytest.mark.parametrize(
    ("name", "symlink", "why"),
    [
        ("../evil.txt", False, "outside"),
        ("PetImages/../../evil.txt", False, "outside"),
        ("/tmp/evil.txt", False, "absolute path"),
        ("C:/evil.txt", False, "absolute path"),
        ("..\\evil.txt", False, "outside"),
        ("PetImages/Cat/link.jpg", True, "symbolic link"),
    ],
)
def test_members_escaping_the_destination_refuse_the_whole_archive(tmp_path, name, symlink, why):
    dest = tmp_path / "out" / "dest"
    with pytest.raises(PipelineError, match="refusing to extract this archive") as error:
        safe_extract_zip(zip_with(tmp_path, name, b"/etc/passwd", symlink), dest)
    assert why in str(error.value)
    assert not (tmp_path / "out" / "evil.txt").exists()
    assert not any(dest.rglob("*"))  # checked before the first byte was written


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "fake.zip").write_text("<html>proxy login page</html>")
    with pytest.raises(PipelineError, match="not a readable zip archive"):
        safe_extract_zip(tmp_path / "fake.zip", tmp_path / "dest")


def test_download_through_keras_get_file_from_a_file_url(tmp_path, petimages_zip):
    data_root = tmp_path / "data"
    sha256 = hashlib.sha256(petimages_zip.read_bytes()).hexdigest()

    result = download_petimages(
        data_root, origin=petimages_zip.as_uri(), file_hash=sha256, progress=False
    )

    assert result.counts == {"Cat": 3, "Dog": 3} and not result.already_present
    assert result.archive == data_root / "downloads" / "kagglecatsanddogs_5340.zip"
    again = download_petimages(data_root, origin="http://127.0.0.1:9/never-fetched.zip")
    assert again.already_present and again.path == result.path


def test_checksum_mismatch_is_refused(tmp_path, petimages_zip):
    with pytest.raises(PipelineError, match=r"sha256 does not match .* deleted it"):
        download_petimages(
            tmp_path / "data", origin=petimages_zip.as_uri(), file_hash="0" * 64, progress=False
        )
    assert not (tmp_path / "data" / "PetImages").exists()
    assert not any((tmp_path / "data" / "downloads").iterdir())  # the bad download is gone


def test_offline_fails_at_once_with_what_to_do_instead(tmp_path):
    with socket.socket() as probe:  # a port on this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(PipelineError) as error:
        download_petimages(tmp_path / "data", origin=f"http://127.0.0.1:{port}/pets.zip")
    assert time.monotonic() - start < 5
    message = str(error.value)
    assert message.startswith("cannot reach 127.0.0.1")
    assert "`data prepare` with `source` set to that folder" in message
    assert not (tmp_path / "data" / "downloads").exists()


def test_foreign_petimages_folder_is_never_replaced(tmp_path, petimages_zip):
    mine = tmp_path / "data" / "PetImages"
    mine.mkdir(parents=True)
    (mine / "my_cat.jpg").write_bytes(b"precious")
    with pytest.raises(PipelineError, match="does not look like an extracted PetImages"):
        download_petimages(tmp_path / "data", force=True, origin=petimages_zip.as_uri())
    assert (mine / "my_cat.jpg").read_bytes() == b"precious"
