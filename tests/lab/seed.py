"""Per-instance keys, the guests' seed disks and the host's OpenSSH config.

Keys live in <run dir>/keys and survive `down`/`up` of the same instance:
    id_ed25519            root's key: host -> guests and guest -> guest
    host_<vm>_ed25519     each guest's sshd host key (pinned in known_hosts files)
The seed disk of each VM is a plain tar (see guest-files/usr/local/sbin/zfsrep-seed)
that the guest unpacks over / early at boot.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from .paths import LINK_ADDRS, VM_NAMES


def _keygen(path: Path, comment: str) -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)


def ensure_keys(run: Path, instance: str) -> Path:
    keys = run / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    _keygen(keys / "id_ed25519", f"zfsrep-lab-{instance}")
    for vm in VM_NAMES:
        _keygen(keys / f"host_{vm}_ed25519", f"zfsrep-lab-{instance}-{vm}-host")
    return keys


def _pub(path: Path) -> str:
    return path.with_name(path.name + ".pub").read_text().strip()


GUEST_SSH_CONFIG = """\
# written by the zfsrep lab
Host source target {addrs}
    User root
    IdentityFile /root/.ssh/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile /root/.ssh/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 20
    ServerAliveInterval 15
    Ciphers chacha20-poly1305@openssh.com
    ControlMaster auto
    ControlPath /run/ssh-mux-%C
    ControlPersist 15m
"""


def seed_tar(keys: Path, vm: str, instance: str) -> bytes:
    """Tar with what `vm` needs: its host key, root's keys, ssh config, known_hosts."""
    client = keys / "id_ed25519"
    known = "".join(
        f"{other},{LINK_ADDRS[other]} {_pub(keys / f'host_{other}_ed25519')}\n"
        for other in VM_NAMES)
    files = [
        ("etc/ssh/ssh_host_ed25519_key", (keys / f"host_{vm}_ed25519").read_bytes(), 0o600),
        ("etc/ssh/ssh_host_ed25519_key.pub",
         (keys / f"host_{vm}_ed25519.pub").read_bytes(), 0o644),
        ("root/.ssh/authorized_keys", (_pub(client) + "\n").encode(), 0o600),
        ("root/.ssh/id_ed25519", client.read_bytes(), 0o600),
        ("root/.ssh/id_ed25519.pub", (_pub(client) + "\n").encode(), 0o644),
        ("root/.ssh/known_hosts", known.encode(), 0o644),
        ("root/.ssh/config",
         GUEST_SSH_CONFIG.format(addrs=" ".join(LINK_ADDRS.values())).encode(), 0o600),
        ("etc/zfsrep-lab/instance", f"{instance}\n".encode(), 0o644),
    ]
    buf = io.BytesIO()
    now = 1_700_000_000  # fixed: the seed's bytes are part of the saved-VM key
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d, mode in (("etc/ssh", 0o755), ("root", 0o700), ("root/.ssh", 0o700),
                        ("etc/zfsrep-lab", 0o755)):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            tar.addfile(info)
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    # a whole number of 64 KiB blocks so qemu sees a clean disk size
    return data + b"\0" * (-len(data) % 65536)


def write_seeds(run: Path, keys: Path, instance: str) -> None:
    for vm in VM_NAMES:
        (run / f"{vm}.seed.tar").write_bytes(seed_tar(keys, vm, instance))


def write_host_ssh_config(run: Path, keys: Path, ports: dict[str, int]) -> Path:
    known = run / "known_hosts"
    known.write_text("".join(
        f"[127.0.0.1]:{ports[vm]} {_pub(keys / f'host_{vm}_ed25519')}\n" for vm in VM_NAMES))
    blocks = ["# zfsrep lab: use as  ssh -F THIS_FILE source|target COMMAND\n"]
    for vm in VM_NAMES:
        blocks.append(f"""\
Host {vm}
    HostName 127.0.0.1
    Port {ports[vm]}
    User root
    IdentityFile {keys / 'id_ed25519'}
    IdentitiesOnly yes
    UserKnownHostsFile {known}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    CheckHostIP no
    BatchMode yes
    LogLevel ERROR
    ConnectTimeout 30
    ServerAliveInterval 15
    ServerAliveCountMax 8
    Ciphers chacha20-poly1305@openssh.com
    ControlMaster auto
    ControlPath {run}/cm-%C
    ControlPersist 30m
""")
    cfg = run / "ssh_config"
    cfg.write_text("\n".join(blocks))
    return cfg
