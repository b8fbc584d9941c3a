"""Content types of user-data parts and cloud-init's first-line detection rules."""

from __future__ import annotations

CLOUD_CONFIG = "text/cloud-config"
CLOUD_CONFIG_ARCHIVE = "text/cloud-config-archive"
CLOUD_CONFIG_JSONP = "text/cloud-config-jsonp"
SHELLSCRIPT = "text/x-shellscript"
SHELLSCRIPT_PER_BOOT = "text/x-shellscript-per-boot"
SHELLSCRIPT_PER_INSTANCE = "text/x-shellscript-per-instance"
SHELLSCRIPT_PER_ONCE = "text/x-shellscript-per-once"
INCLUDE = "text/x-include-url"
INCLUDE_ONCE = "text/x-include-once-url"
BOOTHOOK = "text/cloud-boothook"
PART_HANDLER = "text/part-handler"
JINJA = "text/jinja2"

# Declared types that say nothing about the content: detect from the first line.
UNDECLARED = frozenset({"text/plain", "text/x-not-multipart"})
SCRIPT_TYPES = frozenset(
    {SHELLSCRIPT, SHELLSCRIPT_PER_BOOT, SHELLSCRIPT_PER_INSTANCE, SHELLSCRIPT_PER_ONCE}
)
# Types that end up in ``UserDataResult.parts``; the rest are containers or unknown.
LEAF_TYPES = SCRIPT_TYPES | {CLOUD_CONFIG, CLOUD_CONFIG_JSONP, BOOTHOOK, PART_HANDLER}
INCLUDE_TYPES = frozenset({INCLUDE, INCLUDE_ONCE})
GZIP_TYPES = frozenset(
    {
        "application/gzip",
        "application/gzip-compressed",
        "application/gzipped",
        "application/x-compress",
        "application/x-compressed",
        "application/x-gzip",
        "application/x-gzip-compressed",
    }
)
# What a rendered jinja template may turn into (cloud-init's sub-handlers).
JINJA_RESULT_TYPES = frozenset({CLOUD_CONFIG, SHELLSCRIPT, BOOTHOOK})

_PREFIXES: dict[bytes, str] = {
    b"#include": INCLUDE,
    b"#include-once": INCLUDE_ONCE,
    b"#!": SHELLSCRIPT,
    b"#cloud-config": CLOUD_CONFIG,
    b"#part-handler": PART_HANDLER,
    b"#cloud-boothook": BOOTHOOK,
    b"#cloud-config-archive": CLOUD_CONFIG_ARCHIVE,
    b"#cloud-config-jsonp": CLOUD_CONFIG_JSONP,
    b"## template: jinja": JINJA,
}
# Longest first, so "#include-once" wins over "#include".
_BY_LENGTH = sorted(_PREFIXES.items(), key=lambda item: -len(item[0]))
_LONGEST = len(_BY_LENGTH[0][0])
_WHITESPACE = b" \t\r\n\x0b\x0c"

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


def detect(payload: bytes) -> str | None:
    """The content type the payload's first characters announce, or None.

    Like cloud-init: leading whitespace is skipped and the comparison ignores case.
    """
    start = 0
    length = len(payload)
    while start < length and payload[start] in _WHITESPACE:
        start += 1
    head = payload[start : start + _LONGEST].lower()
    for prefix, content_type in _BY_LENGTH:
        if head.startswith(prefix):
            return content_type
    return None


def is_gzip(payload: bytes) -> bool:
    return payload[:2] == GZIP_MAGIC
