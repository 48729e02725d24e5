"""A unit's credentials kept for its stop phase (`zfsrep systemd keep-credentials|drop-credentials`).

systemd gives LoadCredential= files to ExecStartPre= and ExecStart= only; the ExecStopPost= steps
of a sandboxed unit (teardown of an on-demand target, report-result) cannot read them. The units
therefore copy them, in their first sandboxed ExecStartPre= (as the service user), into a private
directory under the runtime directory (tmpfs: /run/zfsrep/credentials/<unit>, 0700, files 0400),
named by $ZFSREP_KEPT_CREDENTIALS, which `zfsrep.config.credentials.credentials_dir` falls back
to; their last ExecStopPost= removes it. Contents are never read into logs or messages.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from zfsrep.errors import UsageError, ZfsrepError


def keep(source: str | None, dest: str | None) -> list[str]:
    """Copy every credential file of ``source`` into ``dest`` (replaced as a whole); their names."""
    if not source or not dest:
        raise UsageError(
            "keep-credentials runs inside a unit with LoadCredential= and ZFSREP_KEPT_CREDENTIALS= "
            "(render the units with `zfsrep systemd render`)"
        )
    target = Path(dest)
    try:
        names = sorted(p.name for p in Path(source).iterdir() if p.is_file())
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            for name in names:
                fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                with open(Path(source) / name, "rb") as src, os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as e:
        raise ZfsrepError(
            f"cannot keep the unit's credentials from {source} in {dest}: {e.strerror}; "
            "check that the runtime directory (lock_dir) is writable by the service user"
        ) from None
    return names


def drop(dest: str | None) -> bool:
    """Remove the kept copy; False when there was none."""
    if not dest:
        raise UsageError("drop-credentials runs inside a unit with ZFSREP_KEPT_CREDENTIALS=")
    path = Path(dest)
    if not path.exists():
        return False
    try:
        shutil.rmtree(path)
    except OSError as e:
        raise ZfsrepError(f"cannot remove the kept credentials {dest}: {e.strerror}; remove the directory") from None
    return True
