"""Setup code for children that run the user-data engine on one hostile input."""

ENGINE_SETUP = """
from bootseed.late.userdata.engine import process
from bootseed.late.userdata.types import Limits
from bootseed.late.userdata.jsonsafe import jsonable

def summary(result):
    return {
        "parts": [p.source for p in result.parts],
        "config": jsonable(result.cloud_config),
        "problems": [[p.where, p.message] for p in result.problems],
    }
"""


def multipart(*bodies: bytes) -> bytes:
    """A MIME multipart of ``text/plain`` parts, each typed by its first line."""
    out = [b"Content-Type: multipart/mixed; boundary=BOUNDARY\nMIME-Version: 1.0\n\n"]
    for body in bodies:
        out.append(b"--BOUNDARY\nContent-Type: text/plain\n\n" + body + b"\n")
    out.append(b"--BOUNDARY--\n")
    return b"".join(out)
