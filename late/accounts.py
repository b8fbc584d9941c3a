"""The account databases of a target root: /etc/passwd, /etc/shadow, /etc/group, /etc/gshadow.

The files are edited directly (no useradd) so the same code works on ``/``, on
``/sysroot`` and on a test's temp dir, and never reaches the host's accounts when
the target is elsewhere. Lines this code does not understand (comments, NIS ``+``
entries) are kept as they are. ``AccountsDB.save`` writes each changed file
atomically, keeping its mode and owner, in an order (gshadow, group, shadow,
passwd) where a crash leaves at worst a group or a shadow line without its user,
which the next run adopts instead of duplicating.
"""

from __future__ import annotations

import datetime
import os
import stat
from dataclasses import dataclass, field

from bootseed.contract.atomicfile import atomic_write_at
from bootseed.late import linegrammar
from bootseed.late.target import TargetPathError, TargetRoot

PASSWD = "/etc/passwd"
SHADOW = "/etc/shadow"
GROUP = "/etc/group"
GSHADOW = "/etc/gshadow"
LOGIN_DEFS = "/etc/login.defs"
SKEL = "/etc/skel"



class AccountError(ValueError):
    """Bad account input or an inconsistent account database."""


def check_name(name: object, what: str = "name") -> str:
    try:
        return linegrammar.account_name(name, what)
    except linegrammar.LineGrammarError as exc:
        raise AccountError(str(exc)) from None


def check_field(value: str, what: str) -> str:
    try:
        return linegrammar.account_field(value, what)
    except linegrammar.LineGrammarError as exc:
        raise AccountError(str(exc)) from None


@dataclass
class PasswdEntry:
    name: str
    passwd: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str

    def line(self) -> str:
        return ":".join(
            [
                self.name,
                self.passwd,
                str(self.uid),
                str(self.gid),
                self.gecos,
                self.home,
                self.shell,
            ]
        )


@dataclass
class ShadowEntry:
    name: str
    hash: str
    rest: list[str]  # lastchg, min, max, warn, inactive, expire, reserved

    def line(self) -> str:
        return ":".join([self.name, self.hash, *self.rest])


@dataclass
class GroupEntry:
    name: str
    passwd: str
    gid: int
    members: list[str]

    def line(self) -> str:
        return ":".join([self.name, self.passwd, str(self.gid), ",".join(self.members)])


@dataclass
class GshadowEntry:
    name: str
    passwd: str
    admins: list[str]
    members: list[str]

    def line(self) -> str:
        return ":".join([self.name, self.passwd, ",".join(self.admins), ",".join(self.members)])


def _split_list(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


@dataclass
class _Table:
    """One database file: parsed entries by name plus the raw lines, in order."""

    path: str
    lines: list[str | PasswdEntry | ShadowEntry | GroupEntry | GshadowEntry]
    exists: bool
    changed: bool = False


def _parse(
    path: str, text: str
) -> list[str | PasswdEntry | ShadowEntry | GroupEntry | GshadowEntry]:
    out: list[str | PasswdEntry | ShadowEntry | GroupEntry | GshadowEntry] = []
    for raw in text.splitlines():
        parts = raw.split(":")
        entry: str | PasswdEntry | ShadowEntry | GroupEntry | GshadowEntry = raw
        try:
            if raw.startswith(("#", "+", "-")) or not raw.strip():
                pass
            elif path == PASSWD and len(parts) == 7:
                entry = PasswdEntry(parts[0], parts[1], int(parts[2]), int(parts[3]), *parts[4:])
            elif path == SHADOW and len(parts) >= 2:
                rest = (parts[2:] + [""] * 7)[:7]
                entry = ShadowEntry(parts[0], parts[1], rest)
            elif path == GROUP and len(parts) == 4:
                entry = GroupEntry(parts[0], parts[1], int(parts[2]), _split_list(parts[3]))
            elif path == GSHADOW and len(parts) == 4:
                entry = GshadowEntry(
                    parts[0], parts[1], _split_list(parts[2]), _split_list(parts[3])
                )
        except ValueError:
            entry = raw
        out.append(entry)
    return out


@dataclass(frozen=True)
class IdRanges:
    """UID/GID allocation ranges, from the target's /etc/login.defs where it sets them."""

    uid_min: int = 1000
    uid_max: int = 60000
    sys_uid_min: int = 100
    sys_uid_max: int = 999
    gid_min: int = 1000
    gid_max: int = 60000
    sys_gid_min: int = 100
    sys_gid_max: int = 999
    pass_min_days: str = "0"
    pass_max_days: str = "99999"
    pass_warn_age: str = "7"
    home_mode: int = 0o755

    @classmethod
    def from_login_defs(cls, text: str) -> IdRanges:
        values: dict[str, str] = {}
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and not words[0].startswith("#"):
                values[words[0]] = words[1]

        def num(key: str, default: int, base: int = 10) -> int:
            try:
                return int(values[key], base)
            except (KeyError, ValueError):
                return default

        base = cls()
        home_mode = base.home_mode
        if "HOME_MODE" in values:
            home_mode = num("HOME_MODE", base.home_mode, 8)
        elif "UMASK" in values:
            home_mode = 0o777 & ~num("UMASK", 0o022, 8)
        return cls(
            uid_min=num("UID_MIN", base.uid_min),
            uid_max=num("UID_MAX", base.uid_max),
            sys_uid_min=num("SYS_UID_MIN", base.sys_uid_min),
            sys_uid_max=num("SYS_UID_MAX", base.sys_uid_max),
            gid_min=num("GID_MIN", base.gid_min),
            gid_max=num("GID_MAX", base.gid_max),
            sys_gid_min=num("SYS_GID_MIN", base.sys_gid_min),
            sys_gid_max=num("SYS_GID_MAX", base.sys_gid_max),
            pass_min_days=values.get("PASS_MIN_DAYS", base.pass_min_days),
            pass_max_days=values.get("PASS_MAX_DAYS", base.pass_max_days),
            pass_warn_age=values.get("PASS_WARN_AGE", base.pass_warn_age),
            home_mode=home_mode,
        )


def days_since_epoch(day: datetime.date | None = None) -> int:
    day = day or datetime.datetime.now(datetime.UTC).date()
    return (day - datetime.date(1970, 1, 1)).days


def parse_expiredate(text: object) -> int:
    """``YYYY-MM-DD`` as shadow's expire field: days since 1970-01-01."""
    if isinstance(text, datetime.date):
        return days_since_epoch(text)
    try:
        return days_since_epoch(datetime.date.fromisoformat(str(text)))
    except ValueError:
        raise AccountError(f"expiredate {text!r} is not a date (YYYY-MM-DD)") from None


@dataclass
class AccountsDB:
    target: TargetRoot
    tables: dict[str, _Table] = field(default_factory=dict)
    ranges: IdRanges = field(default_factory=IdRanges)

    @classmethod
    def load(cls, target: TargetRoot) -> AccountsDB:
        db = cls(target)
        for path in (PASSWD, SHADOW, GROUP, GSHADOW):
            try:
                text = target.read_text(path)
                exists = True
            except (FileNotFoundError, NotADirectoryError):
                text, exists = "", False
            db.tables[path] = _Table(path, _parse(path, text), exists)
        if not db.tables[PASSWD].exists:
            raise AccountError(f"{target.path(PASSWD)}: no passwd file in the target root")
        db.ranges = IdRanges.from_login_defs(target.read_text(LOGIN_DEFS, default=""))
        return db

    # -- lookups -----------------------------------------------------------------

    def users(self) -> list[PasswdEntry]:
        return [e for e in self.tables[PASSWD].lines if isinstance(e, PasswdEntry)]

    def groups(self) -> list[GroupEntry]:
        return [e for e in self.tables[GROUP].lines if isinstance(e, GroupEntry)]

    def user(self, name: str) -> PasswdEntry | None:
        return next((u for u in self.users() if u.name == name), None)

    def group(self, name: str) -> GroupEntry | None:
        return next((g for g in self.groups() if g.name == name), None)

    def shadow(self, name: str) -> ShadowEntry | None:
        table = self.tables[SHADOW]
        return next((e for e in table.lines if isinstance(e, ShadowEntry) and e.name == name), None)

    def gshadow(self, name: str) -> GshadowEntry | None:
        table = self.tables[GSHADOW]
        return next(
            (e for e in table.lines if isinstance(e, GshadowEntry) and e.name == name), None
        )

    def resolve_owner(self, spec: str) -> tuple[int, int]:
        """``user``, ``user:group``, ``:group`` or numeric ids, resolved in the target.

        A missing part means root, as with a file root just created.
        """
        user_part, _, group_part = spec.partition(":")
        uid, gid = 0, 0
        if user_part:
            if user_part.isdigit():
                uid = int(user_part)
            else:
                found = self.user(user_part)
                if found is None:
                    raise AccountError(f"owner {spec!r}: no user {user_part!r} in the target")
                uid = found.uid
        if group_part:
            if group_part.isdigit():
                gid = int(group_part)
            else:
                grp = self.group(group_part)
                if grp is None:
                    raise AccountError(f"owner {spec!r}: no group {group_part!r} in the target")
                gid = grp.gid
        return uid, gid

    # -- allocation --------------------------------------------------------------

    def _free_id(self, used: set[int], lo: int, hi: int, system: bool) -> int:
        if system:
            # Like useradd: system ids count down from the top of their range.
            for candidate in range(hi, lo - 1, -1):
                if candidate not in used:
                    return candidate
        else:
            in_range = [i for i in used if lo <= i <= hi]
            candidate = max(in_range) + 1 if in_range else lo
            if candidate <= hi:
                return candidate
            for candidate in range(lo, hi + 1):
                if candidate not in used:
                    return candidate
        raise AccountError(f"no free id left in {lo}-{hi}")

    def free_uid(self, system: bool) -> int:
        used = {u.uid for u in self.users()}
        r = self.ranges
        return self._free_id(
            used, *((r.sys_uid_min, r.sys_uid_max) if system else (r.uid_min, r.uid_max)), system
        )

    def free_gid(self, system: bool, prefer: int | None = None) -> int:
        used = {g.gid for g in self.groups()}
        if prefer is not None and prefer not in used:
            return prefer
        r = self.ranges
        return self._free_id(
            used, *((r.sys_gid_min, r.sys_gid_max) if system else (r.gid_min, r.gid_max)), system
        )

    # -- edits -------------------------------------------------------------------

    def _append(
        self, path: str, entry: PasswdEntry | ShadowEntry | GroupEntry | GshadowEntry
    ) -> None:
        table = self.tables[path]
        table.lines.append(entry)
        table.changed = True

    def touch(self, path: str) -> None:
        self.tables[path].changed = True

    def add_group(
        self,
        name: str,
        gid: int | None = None,
        system: bool = False,
        members: list[str] | None = None,
    ) -> GroupEntry:
        check_name(name, "group name")
        if self.group(name) is not None:
            raise AccountError(f"group {name!r} already exists")
        if gid is None:
            gid = self.free_gid(system)
        elif any(g.gid == gid for g in self.groups()):
            raise AccountError(f"group {name!r}: gid {gid} is already used")
        entry = GroupEntry(name, "x", gid, list(members or []))
        self._append(GROUP, entry)
        if self.tables[GSHADOW].exists and self.gshadow(name) is None:
            self._append(GSHADOW, GshadowEntry(name, "!", [], list(members or [])))
        return entry

    def add_member(self, group: str, user: str) -> bool:
        """Add ``user`` to ``group``'s members; ``False`` when already there."""
        grp = self.group(group)
        if grp is None:
            raise AccountError(f"group {group!r} does not exist")
        if user in grp.members:
            return False
        grp.members.append(user)
        self.touch(GROUP)
        gsh = self.gshadow(group)
        if gsh is not None and user not in gsh.members:
            gsh.members.append(user)
            self.touch(GSHADOW)
        return True

    def add_user(
        self,
        name: str,
        uid: int,
        gid: int,
        gecos: str,
        home: str,
        shell: str,
        password_hash: str = "!",
    ) -> PasswdEntry:
        check_name(name, "user name")
        for value, what in ((gecos, "gecos"), (home, "homedir"), (shell, "shell")):
            check_field(value, what)
        if self.user(name) is not None:
            raise AccountError(f"user {name!r} already exists")
        entry = PasswdEntry(name, "x", uid, gid, gecos, home, shell)
        r = self.ranges
        existing = self.shadow(name)
        if existing is None:
            rest = [
                str(days_since_epoch()),
                r.pass_min_days,
                r.pass_max_days,
                r.pass_warn_age,
                "",
                "",
                "",
            ]
            self._append(SHADOW, ShadowEntry(name, check_field(password_hash, "password"), rest))
        else:
            # A crash between the shadow and the passwd write left this line: adopt it.
            existing.hash = check_field(password_hash, "password")
            self.touch(SHADOW)
        self._append(PASSWD, entry)
        return entry

    def _shadow_for(self, name: str) -> ShadowEntry:
        entry = self.shadow(name)
        if entry is None:
            rest = [str(days_since_epoch()), "", "", "", "", "", ""]
            entry = ShadowEntry(name, "!", rest)
            self._append(SHADOW, entry)
        return entry

    def set_password_hash(self, name: str, password_hash: str) -> None:
        entry = self._shadow_for(name)
        check_field(password_hash, "password hash")
        if entry.hash != password_hash:
            entry.hash = password_hash
            entry.rest[0] = str(days_since_epoch())
            self.touch(SHADOW)

    def expire_password(self, name: str) -> None:
        """Make the password one that must be changed at the next login (``passwd
        --expire``): a last-change day of 0 is always older than any maximum age."""
        entry = self._shadow_for(name)
        if entry.rest[0] != "0":
            entry.rest[0] = "0"
            self.touch(SHADOW)

    def lock_password(self, name: str) -> None:
        entry = self._shadow_for(name)
        if not entry.hash.startswith("!"):
            entry.hash = "!" + entry.hash
            self.touch(SHADOW)

    def unlock_password(self, name: str) -> bool:
        """Drop the lock mark; refused (``False``) when that would leave no password at all."""
        entry = self._shadow_for(name)
        stripped = entry.hash.lstrip("!")
        if stripped in ("", "*"):
            return False
        if stripped != entry.hash:
            entry.hash = stripped
            self.touch(SHADOW)
        return True

    def set_expire(self, name: str, day: int) -> None:
        entry = self._shadow_for(name)
        if entry.rest[5] != str(day):
            entry.rest[5] = str(day)
            self.touch(SHADOW)

    # -- writing -----------------------------------------------------------------

    def _file_mode_owner(self, path: str) -> tuple[int, int, int]:
        try:
            st = self.target.lstat(path)
            return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        except FileNotFoundError:
            if path in (SHADOW, GSHADOW):
                shadow_group = self.group("shadow")
                if shadow_group is not None:
                    return 0o640, 0, shadow_group.gid
                return 0o600, 0, 0
            return 0o644, 0, 0

    def save(self) -> list[str]:
        """Write every changed file; returns the target paths written."""
        written = []
        for path in (GSHADOW, GROUP, SHADOW, PASSWD):
            table = self.tables[path]
            if not table.changed:
                continue
            if not table.exists and path == GSHADOW:
                continue
            mode, uid, gid = self._file_mode_owner(path)
            text = "".join((e if isinstance(e, str) else e.line()) + "\n" for e in table.lines)
            self.target.write(path, text, mode=mode, owner=(uid, gid))
            table.changed = False
            table.exists = True
            written.append(path)
        return written


def copy_skel(target: TargetRoot, home: str, uid: int, gid: int) -> None:
    """Copy the target's /etc/skel into a new home, owned by the user (symlinks as links).

    Walks by descriptors inside the target: a symlink in /etc/skel is copied as a link,
    never followed, so it cannot pull a file from outside the target into the home.
    """
    try:
        with target.open_dir(SKEL) as skel_fd, target.open_dir(home) as home_fd:
            _copy_tree(skel_fd, home_fd, uid, gid)
    except TargetPathError:
        pass  # /etc/skel is not a directory in this target: nothing to copy
    except FileNotFoundError:
        if target.exists(SKEL):
            raise


def _copy_tree(src_fd: int, dst_fd: int, uid: int, gid: int) -> None:
    for name in sorted(os.listdir(src_fd)):
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            try:
                os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
            except FileExistsError:
                continue
        elif stat.S_ISDIR(st.st_mode):
            try:
                os.mkdir(name, mode, dir_fd=dst_fd)
            except FileExistsError:
                pass
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            sub_src = os.open(name, flags, dir_fd=src_fd)
            try:
                sub_dst = os.open(name, flags, dir_fd=dst_fd)
                try:
                    _copy_tree(sub_src, sub_dst, uid, gid)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
            with os.fdopen(fd, "rb") as handle:
                data = handle.read()
            atomic_write_at(dst_fd, name, data, mode=mode)
        else:
            continue
        os.chown(name, uid, gid, dir_fd=dst_fd, follow_symlinks=False)
