"""The embedded server's secrets and its private files: what makes the store closed.

One 0600 file in the 0700 data folder, ``secret.json``, holds the server's random password and
the random suffix of its administrative commands: the server renames CONFIG, SHUTDOWN, SAVE and
the others (``ADMIN_COMMANDS``) to ``<NAME>_<suffix>``, so a client holding only the password
cannot reconfigure the server, write files with the owner's rights, load modules or make it a
replica, while the owner (who can read the file) still saves and shuts it down. The password
and the renames go into a 0600 ``redis.conf`` rather than onto the command line, which every
local user can read in ``/proc``. The file is made once per folder and kept, so the URLs
clients hold stay valid across restarts.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

# Commands no client of the store needs, and that would let one change or leave the server.
ADMIN_COMMANDS = (
    "CONFIG", "DEBUG", "MODULE", "SHUTDOWN", "SAVE", "BGSAVE", "BGREWRITEAOF", "SLAVEOF",
    "REPLICAOF", "MIGRATE", "FLUSHALL", "ACL", "FAILOVER",
)  # fmt: skip
SECRET_FILE = "secret.json"
CONF_FILE = "redis.conf"
FOLDER_MODE = 0o700
FILE_MODE = 0o600


class SecretError(RuntimeError):
    """The secret file cannot be read (another user's folder) or is damaged."""


@dataclass(frozen=True)
class EmbeddedSecret:
    """The password and the admin suffix of one data folder."""

    password: str
    admin_suffix: str

    def admin(self, command: str) -> str:
        """The name ``command`` has on the server (``command`` itself when it is not renamed)."""
        name = command.upper()
        return f"{name}_{self.admin_suffix}" if name in ADMIN_COMMANDS else name

    def directives(self) -> list[str]:
        """redis.conf lines: the password and every rename."""
        return [f"requirepass {self.password}"] + [
            f"rename-command {name} {self.admin(name)}" for name in ADMIN_COMMANDS
        ]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a 0600 file, aside and renamed (never half-written, and
    never readable by others, not even for a moment)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def close_folder(folder: Path) -> None:
    """Make ``folder`` (created if needed) 0700 and every file in it 0600: also those an older
    launcher left readable (a 0644 dump.rdb)."""
    folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    os.chmod(folder, FOLDER_MODE)
    for entry in folder.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
            os.chmod(entry, FILE_MODE)
        elif stat.S_ISDIR(mode) and stat.S_IMODE(mode) & 0o077:
            os.chmod(entry, FOLDER_MODE)


def read_secret(folder: Path) -> EmbeddedSecret | None:
    """The folder's secret, or None when it has none yet; SecretError when it cannot be read."""
    path = folder / SECRET_FILE
    try:
        data = json.loads(path.read_text())
        return EmbeddedSecret(str(data["password"]), str(data["admin_suffix"]))
    except FileNotFoundError:
        return None
    except PermissionError:
        raise SecretError(f"{path} is not readable by this user: the folder is another's") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SecretError(f"{path} is damaged ({type(e).__name__}): move it away") from None


def install_secret(folder: Path, secret: EmbeddedSecret) -> None:
    """Give ``folder`` this secret (the nodes of one cluster share theirs: a cluster client
    authenticates to every node with the same password)."""
    close_folder(folder)
    write_private(
        folder / SECRET_FILE,
        json.dumps({"password": secret.password, "admin_suffix": secret.admin_suffix}),
    )


def load_or_create_secret(folder: Path) -> EmbeddedSecret:
    """The folder's secret, made (random: 256 bits of password, 128 of suffix) on the first
    start."""
    found = read_secret(folder)
    if found is not None:
        return found
    made = EmbeddedSecret(secrets.token_hex(32), secrets.token_hex(16))
    install_secret(folder, made)
    return made
