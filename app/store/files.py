"""Where a session's artefacts (recording, report, keyframes) live.

`ArtefactStore` is the interface; `LocalArtefactStore` (one directory per session under
`Settings.sessions_dir`) is the embedded default. Every entry point validates the session id and
the file name first, so no caller can make it touch anything outside its root.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Protocol

# Session ids are `secrets.token_urlsafe` strings: URL-safe base64, 16 to 64 characters.
# Anything else (`..`, `_`, `*`, a slash) is refused before a path is ever built.
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class InvalidArtefactPath(ValueError):
    """A session id or file name that could point outside the store."""


def validate_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not SESSION_ID_RE.fullmatch(session_id):
        raise InvalidArtefactPath(f"not a session id: {session_id!r}")
    return session_id


def validate_file_name(name: str) -> str:
    if not isinstance(name, str) or not FILE_NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidArtefactPath(f"not an artefact name: {name!r}")
    return name


class ArtefactStore(Protocol):
    def session_dir(self, session_id: str) -> Path: ...

    def path_for(self, session_id: str, name: str) -> Path: ...

    def delete_session_files(self, session_id: str) -> bool: ...


class LocalArtefactStore:
    """A directory per session under `root`. Blocking file calls: use from a worker thread."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def session_dir(self, session_id: str) -> Path:
        path = self.root / validate_session_id(session_id)
        # Belt and braces: the regex already rules out separators and dot names. (The last
        # component is not resolved: a symlink there is the store's to unlink, not to follow.)
        if path.name != session_id or path.parent.resolve() != self.root.resolve():
            raise InvalidArtefactPath(f"not a session id: {session_id!r}")
        return path

    def path_for(self, session_id: str, name: str) -> Path:
        return self.session_dir(session_id) / validate_file_name(name)

    def delete_session_files(self, session_id: str) -> bool:
        """Remove the session's directory. True if there was one."""
        path = self.session_dir(session_id)
        if path.is_symlink():
            path.unlink()  # never follow a link out of the store
            return True
        if not path.exists():
            return False
        shutil.rmtree(path)
        return True
