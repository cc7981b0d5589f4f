"""What every cache entry is found by: a frozen dataclass key, its digest, a folder per key.

A key lists everything the cached arrays depend on; its digest (sha256 of the key as canonical
JSON) names the entry's folder, so any change of an input finds another folder instead of
stale arrays. Feature keys (``features.FeatureKey``) and view keys (``views.ViewsKey``) share
this one rule.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any


def key_digest(key: Any) -> str:
    """sha256 (hex) of the dataclass ``key`` as canonical JSON: sorted keys, no spaces."""
    text = json.dumps(asdict(key), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FolderPerKey:
    """A cache root with one sub-folder per key (``key.folder_name()``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def folder(self, key: Any) -> Path:
        return self.root / key.folder_name()
